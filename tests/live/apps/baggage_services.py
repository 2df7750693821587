"""Two services that share a session through W3C baggage alone, for `tests/live/test_baggage.py`.

`front` (Starlette under uvicorn) calls `back` (Flask under gunicorn) with an httpx client that
only OpenTelemetry instruments: no ops-session hook, and `OTEL_PROPAGATORS=tracecontext,baggage`,
no `ops_session` propagator. Both run the session middleware with `baggage=True`.
"""

from __future__ import annotations

import os

import flask
import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ops_session import (
    SESSION_HEADER_NAME,
    SessionMiddleware,
    WSGISessionMiddleware,
    require_session,
)

trace.set_tracer_provider(TracerProvider())

BACK_URL = os.environ.get("BACK_URL", "http://127.0.0.1:8001")
client = httpx.AsyncClient(base_url=BACK_URL, timeout=10)
HTTPXClientInstrumentor().instrument_client(client)


async def hop(request: Request) -> JSONResponse:
    back = (await client.get("/")).raise_for_status().json()
    return JSONResponse({"front": require_session().id, **back})


front = SessionMiddleware(Starlette(routes=[Route("/", hop)]), baggage=True)

back_app = flask.Flask(__name__)


@back_app.get("/")
def report() -> dict[str, str | None]:
    return {
        "back": require_session().id,
        "back got the session header": flask.request.headers.get(SESSION_HEADER_NAME),
        "back got baggage": flask.request.headers.get("baggage"),
        "back got traceparent": flask.request.headers.get("traceparent"),
    }


# The app sees the request headers as they arrived, to show which carried the id.
back = WSGISessionMiddleware(back_app.wsgi_app, baggage=True, update_request_header=False)
