"""The session middlewares composed with OpenTelemetry's own ASGI, WSGI and FastAPI middleware.

Whichever runs outside, the server span carries the session: started inside the session when ours
is outside, stamped by `SessionSpanProcessor`'s request listener when OpenTelemetry's is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OpenTelemetryASGI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OpenTelemetryWSGI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from werkzeug.test import Client

from ops_session import SESSION_HEADER_NAME, SessionMiddleware, WSGISessionMiddleware
from ops_session._core import request_listeners
from ops_session.asgi import Receive, Scope, Send
from ops_session.otel import SessionSpanProcessor

from .conftest import Tracing

HEADERS = {SESSION_HEADER_NAME: "composed-1"}
ATTRIBUTES = {"user": "ada"}
STAMP = {
    "session.id": "composed-1",
    "mirascope.ops.session.id": "composed-1",
    "mirascope.ops.session.attributes": '{"user":"ada"}',
}


def session_ids_by_kind(exporter: InMemorySpanExporter) -> dict[SpanKind, set[Any]]:
    seen: dict[SpanKind, set[Any]] = {}
    for span in exporter.get_finished_spans():
        seen.setdefault(span.kind, set()).add((span.attributes or {}).get("session.id"))
    return seen


def server_span_attributes(exporter: InMemorySpanExporter) -> dict[str, Any]:
    (server,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    return {key: value for key, value in (server.attributes or {}).items() if key in STAMP}


async def hello_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def get_asgi(app: Any, headers: dict[str, str] = HEADERS) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/", headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize("ours_outside", [True, False], ids=["ours-outside", "ours-inside"])
async def test_asgi_server_span_carries_the_session_in_either_order(
    tracing: Tracing, ours_outside: bool
) -> None:
    provider, exporter = tracing
    app = (
        SessionMiddleware(
            OpenTelemetryASGI(hello_asgi, tracer_provider=provider), attributes=ATTRIBUTES
        )
        if ours_outside
        else OpenTelemetryASGI(
            SessionMiddleware(hello_asgi, attributes=ATTRIBUTES), tracer_provider=provider
        )
    )
    response = await get_asgi(app)
    assert response.headers[SESSION_HEADER_NAME] == "composed-1"
    assert session_ids_by_kind(exporter) == {
        SpanKind.SERVER: {"composed-1"},
        SpanKind.INTERNAL: {"composed-1"},  # OpenTelemetry's "http send" spans
    }
    assert server_span_attributes(exporter) == STAMP


@pytest.mark.anyio
async def test_a_generated_session_reaches_the_server_span_too(tracing: Tracing) -> None:
    provider, exporter = tracing
    response = await get_asgi(
        OpenTelemetryASGI(SessionMiddleware(hello_asgi), tracer_provider=provider), headers={}
    )
    generated = response.headers[SESSION_HEADER_NAME]
    assert session_ids_by_kind(exporter)[SpanKind.SERVER] == {generated}


@pytest.mark.anyio
async def test_a_processor_shut_down_and_added_again_stamps_the_server_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = SessionSpanProcessor()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor.shutdown()  # as a provider's shutdown() does; the processor is still in use here
    assert not request_listeners
    await get_asgi(OpenTelemetryASGI(SessionMiddleware(hello_asgi), tracer_provider=provider))
    provider.shutdown()
    assert session_ids_by_kind(exporter) == {
        SpanKind.SERVER: {"composed-1"},
        SpanKind.INTERNAL: {"composed-1"},
    }


@pytest.mark.anyio
async def test_only_server_spans_are_stamped_by_the_listener(tracing: Tracing) -> None:
    """A span around an in-process request is the caller's, not the request's."""
    provider, exporter = tracing
    with provider.get_tracer("tests").start_as_current_span("caller"):
        await get_asgi(SessionMiddleware(hello_asgi))
    ((caller),) = exporter.get_finished_spans()
    assert caller.name == "caller" and dict(caller.attributes or {}) == {}


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
async def test_fastapi_instrumentor_server_span_carries_the_session(tracing: Tracing) -> None:
    provider, exporter = tracing
    app = fastapi_app(provider)
    app.add_middleware(SessionMiddleware, attributes=ATTRIBUTES)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    try:
        await get_asgi(app)
        # The instrumentor puts its middleware outside every add_middleware one.
        assert session_ids_by_kind(exporter) == {
            SpanKind.SERVER: {"composed-1"},
            SpanKind.INTERNAL: {"composed-1"},
        }
        assert server_span_attributes(exporter) == STAMP
    finally:
        FastAPIInstrumentor.uninstrument_app(app)


def hello_wsgi(environ: Any, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"hello"


WRAPS: dict[str, Callable[[Any, TracerProvider], Any]] = {
    "ours-outside": lambda app, provider: WSGISessionMiddleware(
        OpenTelemetryWSGI(app, tracer_provider=provider), attributes=ATTRIBUTES
    ),
    "ours-inside": lambda app, provider: OpenTelemetryWSGI(
        WSGISessionMiddleware(app, attributes=ATTRIBUTES), tracer_provider=provider
    ),
}


@pytest.mark.parametrize("order", list(WRAPS))
def test_wsgi_server_span_carries_the_session_in_either_order(tracing: Tracing, order: str) -> None:
    provider, exporter = tracing
    response = Client(WRAPS[order](hello_wsgi, provider)).get("/", headers=HEADERS)
    assert response.headers[SESSION_HEADER_NAME] == "composed-1"
    assert response.get_data() == b"hello"
    assert session_ids_by_kind(exporter) == {SpanKind.SERVER: {"composed-1"}}
    assert server_span_attributes(exporter) == STAMP


@pytest.mark.parametrize("order", list(WRAPS))
def test_flask_app_wrapped_in_both(tracing: Tracing, order: str) -> None:
    provider, exporter = tracing
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        with provider.get_tracer("tests").start_as_current_span("handler"):
            return "ok"

    app.wsgi_app = WRAPS[order](app.wsgi_app, provider)  # type: ignore[method-assign]
    app.test_client().get("/", headers=HEADERS)
    assert session_ids_by_kind(exporter) == {
        SpanKind.SERVER: {"composed-1"},
        SpanKind.INTERNAL: {"composed-1"},
    }
