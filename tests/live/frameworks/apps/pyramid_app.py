"""Pyramid, whose WSGI app `main` returns wrapped by the WSGI middleware.

Pyramid lets an exception that no view handles leave the app, and the server answers it: the
app registers an exception view for its 500 page, as Pyramid apps do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from ops_session import WSGISessionMiddleware

from .routes import DEFAULT_DELAY, HEADER, LINES, HandlerError, current_id, line, session_payload


def read_session(request: Request) -> dict[str, str | None]:
    return session_payload(request.headers.get(HEADER))


def stream(request: Request) -> Response:
    def lines() -> Iterator[bytes]:
        for _ in range(LINES):
            time.sleep(0.001)
            yield line().encode()

    return Response(app_iter=lines(), content_type="text/plain")


def read_twice(request: Request) -> dict[str, str | None]:
    first = current_id()
    time.sleep(float(request.params.get("delay", DEFAULT_DELAY)))
    return {"first": first, "second": current_id()}


def fail(request: Request) -> Response:
    raise HandlerError


def server_error(exc: Exception, request: Request) -> Response:
    return Response(f"error in session {current_id()}", status=500, content_type="text/plain")


def main() -> WSGISessionMiddleware:
    with Configurator() as config:
        config.add_route("session", "/session")
        config.add_view(read_session, route_name="session", renderer="json")
        config.add_route("stream", "/stream")
        config.add_view(stream, route_name="stream")
        config.add_route("sleep", "/sleep")
        config.add_view(read_twice, route_name="sleep", renderer="json")
        config.add_route("error", "/error")
        config.add_view(fail, route_name="error")
        config.add_exception_view(server_error, context=Exception)
        return WSGISessionMiddleware(config.make_wsgi_app())


app = main()
