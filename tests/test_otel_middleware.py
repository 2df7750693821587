"""The session middlewares composed with OpenTelemetry's own ASGI, WSGI and FastAPI middleware.

Ours must run outside theirs: the server span is started when their middleware is called, and
only a span started inside the session carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OpenTelemetryASGI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OpenTelemetryWSGI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from werkzeug.test import Client

from ops_session import SESSION_HEADER_NAME, SessionMiddleware, WSGISessionMiddleware
from ops_session.asgi import Receive, Scope, Send

from .conftest import Tracing

HEADERS = {SESSION_HEADER_NAME: "composed-1"}


def session_ids_by_kind(exporter: InMemorySpanExporter) -> dict[SpanKind, set[Any]]:
    seen: dict[SpanKind, set[Any]] = {}
    for span in exporter.get_finished_spans():
        seen.setdefault(span.kind, set()).add((span.attributes or {}).get("session.id"))
    return seen


async def hello_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def get_asgi(app: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/", headers=HEADERS)


@pytest.mark.anyio
async def test_asgi_server_span_carries_the_session_with_ours_outside(tracing: Tracing) -> None:
    provider, exporter = tracing
    response = await get_asgi(
        SessionMiddleware(OpenTelemetryASGI(hello_asgi, tracer_provider=provider))
    )
    assert response.headers[SESSION_HEADER_NAME] == "composed-1"
    assert session_ids_by_kind(exporter) == {
        SpanKind.SERVER: {"composed-1"},
        SpanKind.INTERNAL: {"composed-1"},  # OpenTelemetry's "http send" spans
    }


@pytest.mark.anyio
async def test_asgi_server_span_misses_the_session_with_ours_inside(tracing: Tracing) -> None:
    provider, exporter = tracing
    response = await get_asgi(
        OpenTelemetryASGI(SessionMiddleware(hello_asgi), tracer_provider=provider)
    )
    assert response.headers[SESSION_HEADER_NAME] == "composed-1"
    assert session_ids_by_kind(exporter)[SpanKind.SERVER] == {None}


def fastapi_app(provider: TracerProvider) -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def index() -> dict[str, str]:
        with provider.get_tracer("tests").start_as_current_span("handler"):
            return {"ok": "yes"}

    return app


@pytest.mark.anyio
async def test_fastapi_add_middleware_order_puts_the_server_span_inside(tracing: Tracing) -> None:
    provider, exporter = tracing
    app = fastapi_app(provider)
    app.add_middleware(OpenTelemetryASGI, tracer_provider=provider)
    app.add_middleware(SessionMiddleware)  # added last, so it runs first
    await get_asgi(app)
    assert session_ids_by_kind(exporter)[SpanKind.SERVER] == {"composed-1"}


@pytest.mark.anyio
async def test_fastapi_instrumentor_needs_the_session_middleware_wrapped_around_the_app(
    tracing: Tracing,
) -> None:
    provider, exporter = tracing
    app = fastapi_app(provider)
    app.add_middleware(SessionMiddleware)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    try:
        await get_asgi(app)
        # The instrumentor puts its middleware outside every add_middleware one.
        assert session_ids_by_kind(exporter)[SpanKind.SERVER] == {None}
        assert session_ids_by_kind(exporter)[SpanKind.INTERNAL] == {"composed-1"}
        exporter.clear()
        await get_asgi(SessionMiddleware(app))
        assert session_ids_by_kind(exporter)[SpanKind.SERVER] == {"composed-1"}
    finally:
        FastAPIInstrumentor.uninstrument_app(app)


def hello_wsgi(environ: Any, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"hello"


@pytest.mark.parametrize(
    ("wrap", "server_span_session"),
    [
        pytest.param(
            lambda app, p: WSGISessionMiddleware(OpenTelemetryWSGI(app, tracer_provider=p)),
            "composed-1",
            id="ours-outside",
        ),
        pytest.param(
            lambda app, p: OpenTelemetryWSGI(WSGISessionMiddleware(app), tracer_provider=p),
            None,
            id="ours-inside",
        ),
    ],
)
def test_wsgi_server_span_carries_the_session_only_with_ours_outside(
    tracing: Tracing, wrap: Any, server_span_session: str | None
) -> None:
    provider, exporter = tracing
    response = Client(wrap(hello_wsgi, provider)).get("/", headers=HEADERS)
    assert response.headers[SESSION_HEADER_NAME] == "composed-1"
    assert response.get_data() == b"hello"
    assert session_ids_by_kind(exporter) == {SpanKind.SERVER: {server_span_session}}


def test_flask_wsgi_app_wrapped_in_both(tracing: Tracing) -> None:
    provider, exporter = tracing
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        with provider.get_tracer("tests").start_as_current_span("handler"):
            return "ok"

    app.wsgi_app = WSGISessionMiddleware(  # type: ignore[method-assign]
        OpenTelemetryWSGI(app.wsgi_app, tracer_provider=provider)
    )
    app.test_client().get("/", headers=HEADERS)
    assert session_ids_by_kind(exporter) == {
        SpanKind.SERVER: {"composed-1"},
        SpanKind.INTERNAL: {"composed-1"},
    }
