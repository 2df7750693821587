"""FastAPI sub-applications and routers with middleware stacks of their own.

- `mounted`: a plain FastAPI app whose `/sub` is a sub-application that runs its own session
  layer (`install`); the outer app's own routes run in none.
- `router_stack`: an app with `install`, whose `/api` routes are mounted with a middleware stack
  of their own, holding a second `SessionMiddleware` that gives them their own attributes in the
  session of the same id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.middleware import Middleware
from starlette.routing import Mount

from ops_session import SessionMiddleware, current_session, install

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


def session_routes() -> APIRouter:
    router = APIRouter()

    @router.get("/session")
    async def read_session(request: Request) -> dict[str, str | None]:
        return session_payload(request.headers.get(HEADER))

    @router.get("/attributes")
    async def read_attributes() -> dict[str, object]:
        current = current_session()
        return dict(current.attributes or {}) if current else {"session": None}

    @router.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[str]:
            for _ in range(LINES):
                await asyncio.sleep(0)
                yield line()

        return StreamingResponse(lines(), media_type="text/plain")

    @router.get("/sleep")
    async def read_twice(delay: float = DEFAULT_DELAY) -> dict[str, str | None]:
        first = current_id()
        await asyncio.sleep(delay)
        return {"first": first, "second": current_id()}

    @router.get("/error")
    async def fail() -> None:
        raise HandlerError

    @router.websocket("/ws")
    async def echo_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(current_id() or "none")
        await websocket.send_text(echo(await websocket.receive_text()))
        await websocket.close()

    return router


def outside_routes(app: FastAPI) -> None:
    @app.get("/outside")
    async def outside(request: Request) -> dict[str, str | None]:
        return session_payload(request.headers.get(HEADER))


mounted = FastAPI()
outside_routes(mounted)
sub_app = install(FastAPI(), attributes={"app": "sub"})
sub_app.include_router(session_routes())
mounted.mount("/sub", sub_app)

router_stack = install(FastAPI(), attributes={"app": "outer"})
outside_routes(router_stack)
router_stack.router.routes.append(
    Mount(
        "/api",
        routes=session_routes().routes,
        middleware=[Middleware(SessionMiddleware, attributes={"app": "api-router"})],
    )
)
