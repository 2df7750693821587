"""Bottle, whose app is wrapped by the WSGI middleware."""

from __future__ import annotations

import time
from collections.abc import Iterator

import bottle

from ops_session import WSGISessionMiddleware

from .routes import DEFAULT_DELAY, HEADER, LINES, HandlerError, current_id, line, session_payload

bottle_app = bottle.Bottle()


@bottle_app.get("/session")
def read_session() -> dict[str, str | None]:
    return session_payload(bottle.request.get_header(HEADER))


@bottle_app.get("/stream")
def stream() -> Iterator[str]:
    bottle.response.content_type = "text/plain"
    for _ in range(LINES):
        time.sleep(0.001)
        yield line()


@bottle_app.get("/sleep")
def read_twice() -> dict[str, str | None]:
    first = current_id()
    time.sleep(float(bottle.request.query.get("delay", DEFAULT_DELAY)))
    return {"first": first, "second": current_id()}


@bottle_app.get("/error")
def fail() -> None:
    raise HandlerError


app = WSGISessionMiddleware(bottle_app)
