"""aiohttp's own web server, with the native middleware `ops_session.aiohttp.setup` adds."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ops_session.aiohttp import setup

from .routes import (
    DEFAULT_DELAY,
    HEADER,
    LINES,
    HandlerError,
    current_id,
    echo,
    line,
    session_payload,
)

routes = web.RouteTableDef()


@routes.get("/session")
async def read_session(request: web.Request) -> web.Response:
    return web.json_response(session_payload(request.headers.get(HEADER)))


@routes.get("/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for _ in range(LINES):
        await asyncio.sleep(0)
        await response.write(line().encode())
    await response.write_eof()
    return response


@routes.get("/sleep")
async def read_twice(request: web.Request) -> web.Response:
    first = current_id()
    await asyncio.sleep(float(request.query.get("delay", DEFAULT_DELAY)))
    return web.json_response({"first": first, "second": current_id()})


@routes.get("/error")
async def fail(request: web.Request) -> web.Response:
    raise HandlerError


@routes.get("/ws")
async def echo_socket(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    await socket.send_str(current_id() or "none")
    await socket.send_str(echo(await socket.receive_str()))
    await socket.close()
    return socket


def init(argv: list[str] | None = None) -> web.Application:
    """The app factory `python -m aiohttp.web` calls."""
    app = web.Application()
    app.add_routes(routes)
    setup(app)
    return app
