"""The FastAPI app that the server tests run under uvicorn, in three stacks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, Response, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse

from ops_session import SESSION_HEADER_NAME, SessionMiddleware, current_session, install, session
from ops_session.asgi import ASGIApp

_background_results: dict[str, str] = {}
_lock = threading.Lock()


def _current_id() -> str | None:
    current = current_session()
    return current.id if current else None


def build() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"started": True, "session_at_startup": _current_id()}

    app = FastAPI(lifespan=lifespan)

    @app.get("/session")
    async def read_session(request: Request) -> dict[str, Any]:
        current = current_session()
        return {
            "id": current.id if current else None,
            "attributes": dict(current.attributes or {}) if current else None,
            "request_header": request.headers.get(SESSION_HEADER_NAME),
        }

    @app.get("/sync")
    def read_session_in_threadpool() -> dict[str, Any]:
        return {"id": _current_id(), "thread": threading.current_thread().name}

    @app.get("/sleep")
    async def read_twice(delay: float = 0.05) -> dict[str, Any]:
        first = _current_id()
        await asyncio.sleep(delay)
        return {"first": first, "second": _current_id()}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            for _ in range(5):
                await asyncio.sleep(0.01)
                yield f"{_current_id()}\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/background")
    async def schedule(key: str, tasks: BackgroundTasks) -> dict[str, str]:
        def record() -> None:
            with _lock:
                _background_results[key] = _current_id() or "none"

        tasks.add_task(record)
        return {"scheduled": key}

    @app.get("/background-result")
    async def background_result(key: str) -> dict[str, str | None]:
        with _lock:
            return {"id": _background_results.get(key)}

    @app.get("/nested")
    async def nested() -> dict[str, Any]:
        outer = _current_id()
        with session(id="nested-inner", attributes={"step": 2}):
            inner = _current_id()
        return {"outer": outer, "inner": inner, "after": _current_id()}

    @app.get("/own-header")
    async def own_header() -> Response:
        return PlainTextResponse("own", headers={SESSION_HEADER_NAME: "app-chosen"})

    @app.get("/error")
    async def fail() -> None:
        raise RuntimeError("unhandled on purpose")

    @app.get("/lifespan")
    async def lifespan_state(request: Request) -> dict[str, Any]:
        return {
            "started": request.state.started,
            "session_at_startup": request.state.session_at_startup,
        }

    @app.websocket("/ws")
    async def websocket_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(_current_id() or "none")
        message = await websocket.receive_text()
        await websocket.send_text(f"{message}:{_current_id()}")
        await websocket.close()

    async def on_server_error(request: Request, exc: Exception) -> PlainTextResponse:
        # With add_middleware this handler runs outside the session, after it closed:
        # request.state still names it. Wrapped outermost, current_session() works too.
        from_state = getattr(request.state, "ops_session", None)
        return PlainTextResponse(
            f"error in session {from_state.id if from_state else None}, current {_current_id()}",
            status_code=500,
        )

    app.add_exception_handler(Exception, on_server_error)
    return app


def _with_add_middleware(**options: Any) -> FastAPI:
    app = build()
    app.add_middleware(SessionMiddleware, **options)
    return app


def _attributes(scope: Any) -> dict[str, Any]:
    return {"method": scope["method"], "path": scope["path"]} if scope["type"] == "http" else {}


app = _with_add_middleware(attributes=_attributes)
outermost: ASGIApp = SessionMiddleware(build())
strict = _with_add_middleware(on_invalid="reject")
installed = install(build())
# A generator whose ids the validator refuses: the middleware fails when Starlette builds it.
misconfigured = _with_add_middleware(generator=lambda: "not a valid id")
