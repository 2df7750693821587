"""Falcon's ASGI app, wrapped by the ASGI middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import falcon.asgi

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


class Session:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = session_payload(req.get_header(HEADER))


class Stream:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def lines() -> AsyncIterator[bytes]:
            for _ in range(LINES):
                await asyncio.sleep(0)
                yield line().encode()

        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = lines()


class Sleep:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        first = current_id()
        await asyncio.sleep(req.get_param_as_float("delay", default=DEFAULT_DELAY))
        resp.media = {"first": first, "second": current_id()}


class Error:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raise HandlerError


class Echo:
    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        await ws.accept()
        await ws.send_text(current_id() or "none")
        await ws.send_text(echo(await ws.receive_text()))
        await ws.close()


falcon_app = falcon.asgi.App()
falcon_app.add_route("/session", Session())
falcon_app.add_route("/stream", Stream())
falcon_app.add_route("/sleep", Sleep())
falcon_app.add_route("/error", Error())
falcon_app.add_route("/ws", Echo())
app: ASGIApp = SessionMiddleware(falcon_app)
