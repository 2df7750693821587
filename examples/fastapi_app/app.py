"""A FastAPI service whose every request runs in a session, and that carries it to the next hop.

Run: uvicorn --app-dir examples/fastapi_app --host 127.0.0.1 --port 5000 app:app
(set FLASK_APP_URL when the Flask example is not on http://127.0.0.1:5001).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request

from ops_session import SESSION_HEADER_NAME, SessionMiddleware, current_session, inject_session

FLASK_APP_URL = os.environ.get("FLASK_APP_URL", "http://127.0.0.1:5001")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=FLASK_APP_URL, timeout=10) as flask_app:
        yield {"flask_app": flask_app}


app = FastAPI(lifespan=lifespan)
app.add_middleware(SessionMiddleware, attributes={"service": "fastapi_app"})


@app.get("/session")
async def read_session(request: Request) -> dict[str, Any]:
    """What this service sees of the session it is running in."""
    current = current_session()
    assert current is not None, "every request runs inside the middleware's session"
    return {
        "service": "fastapi_app",
        "session_id": current.id,
        "attributes": dict(current.attributes or {}),
        "received_header": request.headers.get(SESSION_HEADER_NAME),
    }


@app.get("/hop")
async def call_flask_app(request: Request) -> dict[str, Any]:
    """Call the Flask example with the session header, so one session spans both services."""
    flask_app: httpx.AsyncClient = request.state.flask_app
    response = await flask_app.get("/session", headers=inject_session({}))
    response.raise_for_status()
    return {"fastapi_app": await read_session(request), "flask_app": response.json()}
