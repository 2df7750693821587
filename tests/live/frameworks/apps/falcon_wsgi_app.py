"""Falcon's WSGI app, wrapped by the WSGI middleware."""

from __future__ import annotations

import time
from collections.abc import Iterator

import falcon

from ops_session import WSGISessionMiddleware

from .routes import DEFAULT_DELAY, HEADER, LINES, HandlerError, current_id, line, session_payload


class Session:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = session_payload(req.get_header(HEADER))


class Stream:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        def lines() -> Iterator[bytes]:
            for _ in range(LINES):
                time.sleep(0.001)
                yield line().encode()

        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = lines()


class Sleep:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        first = current_id()
        time.sleep(req.get_param_as_float("delay", default=DEFAULT_DELAY))
        resp.media = {"first": first, "second": current_id()}


class Error:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise HandlerError


falcon_app = falcon.App()
falcon_app.add_route("/session", Session())
falcon_app.add_route("/stream", Stream())
falcon_app.add_route("/sleep", Sleep())
falcon_app.add_route("/error", Error())
app = WSGISessionMiddleware(falcon_app)
