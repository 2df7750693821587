"""Quart, with the ASGI middleware around `app.asgi_app`, as Flask apps wrap `app.wsgi_app`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from quart import Quart, request, websocket

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

app = Quart(__name__)
app.asgi_app = SessionMiddleware(app.asgi_app)  # type: ignore[method-assign]


@app.get("/session")
async def read_session() -> dict[str, str | None]:
    return session_payload(request.headers.get(HEADER))


@app.get("/stream")
async def stream() -> tuple[AsyncIterator[str], dict[str, str]]:
    async def lines() -> AsyncIterator[str]:
        for _ in range(LINES):
            await asyncio.sleep(0)
            yield line()

    return lines(), {"Content-Type": "text/plain"}


@app.get("/sleep")
async def read_twice() -> dict[str, str | None]:
    first = current_id()
    await asyncio.sleep(float(request.args.get("delay", DEFAULT_DELAY)))
    return {"first": first, "second": current_id()}


@app.get("/error")
async def fail() -> str:
    raise HandlerError


@app.websocket("/ws")
async def echo_socket() -> None:
    await websocket.accept()
    await websocket.send(current_id() or "none")
    await websocket.send(echo(str(await websocket.receive())))
