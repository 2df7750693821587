"""Litestar, with the ASGI middleware declared as Litestar declares middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, get, websocket
from litestar.connection import WebSocket
from litestar.middleware import DefineMiddleware
from litestar.response import Stream

from ops_session import SessionMiddleware

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


@get("/session")
async def read_session(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    return session_payload(request.headers.get(HEADER))


@get("/stream")
async def stream() -> Stream:
    async def lines() -> AsyncIterator[str]:
        for _ in range(LINES):
            await asyncio.sleep(0)
            yield line()

    return Stream(lines(), media_type="text/plain")


@get("/sleep")
async def read_twice(delay: float = DEFAULT_DELAY) -> dict[str, str | None]:
    first = current_id()
    await asyncio.sleep(delay)
    return {"first": first, "second": current_id()}


@get("/error")
async def fail() -> None:
    raise HandlerError


@websocket("/ws")
async def echo_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_text(current_id() or "none")
    await socket.send_text(echo(await socket.receive_text()))
    await socket.close()


app = Litestar(
    route_handlers=[read_session, stream, read_twice, fail, echo_socket],
    middleware=[DefineMiddleware(SessionMiddleware, attributes={"framework": "litestar"})],
)
