"""The WSGI configurations: a minimal Flask app, bare and behind each middleware."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import EnvironBuilder

from ops_session import SESSION_HEADER_NAME, WSGISessionMiddleware

from . import tracing
from .asgi_apps import ORDINARY_HEADERS, VALID_ID
from .required import BodyInContext, WSGIApp
from .required import WSGIPassThroughMiddleware as PassThroughMiddleware

__all__ = ["BodyInContext", "PassThroughMiddleware", "WSGIApp"]

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


def flask_setting_the_header() -> WSGIApp:
    """The bare app, but answering with the session header itself: what writing it costs."""
    return flask_app({SESSION_HEADER_NAME: VALID_ID}).wsgi_app


def floor() -> WSGIApp:
    """The floor under any WSGI session middleware, whole: the pass-through over the app writing
    the session header, so that it also pays for the server writing one more response header."""
    return PassThroughMiddleware(flask_setting_the_header())


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
    with_baggage = WSGISessionMiddleware(bare, baggage=True)
    stamped_provider, listener = tracing.stamped_provider()
    return {
        "bare Flask": (bare, environ(session_id=VALID_ID)),
        "ops-session, valid id": (with_session, environ(session_id=VALID_ID)),
        "ops-session, generated id": (with_session, environ()),
        "ops-session, valid id, after a span processor was added and removed": (
            tracing.after_a_listener(WSGISessionMiddleware(bare)),
            environ(session_id=VALID_ID),
        ),
        # The baggage option (issue 29), as in the ASGI rows.
        "ops-session, baggage on, valid id": (with_baggage, environ(session_id=VALID_ID)),
        "ops-session, baggage on, generated id": (with_baggage, environ()),
        "ops-session, baggage on, id in baggage": (
            with_baggage,
            {**environ(), "HTTP_BAGGAGE": f"tenant=acme,session.id={VALID_ID}"},
        ),
        "pass-through middleware": (PassThroughMiddleware(bare), environ(session_id=VALID_ID)),
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
