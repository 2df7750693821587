"""The WSGI configurations: a minimal Flask app, bare and behind each middleware."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import EnvironBuilder

from ops_session import SESSION_HEADER_NAME, WSGISessionMiddleware

from . import tracing
from .asgi_apps import ORDINARY_HEADERS, VALID_ID

WSGIApp = Callable[..., Iterable[bytes]]
STREAMED_CHUNKS = 10


def flask_app(response_headers: dict[str, str] | None = None) -> Flask:
    app = Flask("bench")

    @app.get("/")
    def index() -> tuple[str, dict[str, str]]:
        return "ok", response_headers or {}

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[str]:
            for _ in range(STREAMED_CHUNKS):
                yield "chunk\n"

        return app.response_class(chunks(), mimetype="text/plain")

    return app


def environ(path: str = "/", session_id: str | None = None) -> dict[str, Any]:
    headers = {name.decode(): value.decode() for name, value in ORDINARY_HEADERS}
    headers.pop("host")
    if session_id is not None:
        headers[SESSION_HEADER_NAME] = session_id
    builder = EnvironBuilder(
        path=path, base_url="http://api.example.com", headers=list(headers.items())
    )
    return builder.get_environ()


def configurations() -> dict[str, tuple[WSGIApp, dict[str, Any]]]:
    """Name -> (app, environ). The first entry is the bare app."""
    bare = flask_app().wsgi_app
    with_session = WSGISessionMiddleware(bare)
    stamped_provider, listener = tracing.stamped_provider()
    return {
        "bare Flask": (bare, environ(session_id=VALID_ID)),
        "ops-session, valid id": (with_session, environ(session_id=VALID_ID)),
        "ops-session, generated id": (with_session, environ()),
        "werkzeug ProxyFix": (ProxyFix(bare), environ(session_id=VALID_ID)),
        "OpenTelemetry WSGI": (
            OpenTelemetryMiddleware(bare, tracer_provider=TracerProvider()),
            environ(session_id=VALID_ID),
        ),
        # The usual Flask order: OpenTelemetry's middleware wrapped outside the session's.
        "OpenTelemetry WSGI + ops-session": (
            OpenTelemetryMiddleware(with_session, tracer_provider=tracing.provider()),
            environ(session_id=VALID_ID),
        ),
        "OpenTelemetry WSGI + ops-session, spans stamped": (
            tracing.stamped(
                OpenTelemetryMiddleware(with_session, tracer_provider=stamped_provider), listener
            ),
            environ(session_id=VALID_ID),
        ),
        "bare Flask, 10-chunk stream": (bare, environ("/stream", VALID_ID)),
        "ops-session, 10-chunk stream": (with_session, environ("/stream", VALID_ID)),
    }
