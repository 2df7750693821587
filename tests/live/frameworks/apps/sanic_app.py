"""Sanic in its ASGI mode, wrapped by the ASGI middleware and served by uvicorn."""

from __future__ import annotations

import asyncio

from sanic import Request, Sanic, Websocket
from sanic.response import HTTPResponse, JSONResponse, json

from ops_session import SessionMiddleware
from ops_session.asgi import ASGIApp

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

sanic_app = Sanic("ops_session_frameworks")


@sanic_app.get("/session")
async def read_session(request: Request) -> JSONResponse:
    return json(session_payload(request.headers.get(HEADER)))


@sanic_app.get("/stream")
async def stream(request: Request) -> None:
    response = await request.respond(content_type="text/plain")
    for _ in range(LINES):
        await asyncio.sleep(0)
        await response.send(line())
    await response.eof()


@sanic_app.get("/sleep")
async def read_twice(request: Request) -> JSONResponse:
    first = current_id()
    await asyncio.sleep(float(request.args.get("delay", DEFAULT_DELAY)))
    return json({"first": first, "second": current_id()})


@sanic_app.get("/error")
async def fail(request: Request) -> HTTPResponse:
    raise HandlerError


async def echo_socket(request: Request, ws: Websocket) -> None:
    await ws.send(current_id() or "none")
    await ws.send(echo(str(await ws.recv())))


sanic_app.add_websocket_route(echo_socket, "/ws")  # `@websocket` is untyped


app: ASGIApp = SessionMiddleware(sanic_app)
