"""The Flask app that the server tests run under gunicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import flask

from ops_session import SESSION_HEADER_NAME, WSGISessionMiddleware, current_session, session


def _current_id() -> str | None:
    current = current_session()
    return current.id if current else None


def build(**options: Any) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/session")
    def read_session() -> dict[str, Any]:
        current = current_session()
        return {
            "id": current.id if current else None,
            "attributes": dict(current.attributes or {}) if current else None,
            "request_header": flask.request.headers.get(SESSION_HEADER_NAME),
            "thread": threading.get_ident(),
        }

    @app.get("/sleep")
    def read_twice() -> dict[str, Any]:
        first = _current_id()
        time.sleep(float(flask.request.args.get("delay", "0.01")))
        return {"first": first, "second": _current_id()}

    @app.get("/stream")
    def stream() -> flask.Response:
        def chunks() -> Iterator[str]:
            for _ in range(5):
                time.sleep(0.01)
                yield f"{_current_id()}\n"

        return flask.Response(chunks(), mimetype="text/plain")

    @app.get("/nested")
    def nested() -> dict[str, Any]:
        outer = _current_id()
        with session(id="nested-inner"):
            inner = _current_id()
        return {"outer": outer, "inner": inner, "after": _current_id()}

    @app.get("/own-header")
    def own_header() -> flask.Response:
        return flask.Response("own", headers={SESSION_HEADER_NAME: "app-chosen"})

    @app.get("/error")
    def fail() -> flask.Response:
        raise RuntimeError("unhandled on purpose")

    app.wsgi_app = WSGISessionMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


app = build(attributes=lambda environ: {"method": environ["REQUEST_METHOD"]})
strict = build(on_invalid="reject")
