"""A FastAPI service whose requests run in sessions that its spans, logs and outgoing calls carry.

Run from the repository root, with the Flask example on port 5001 (or `FLASK_APP_URL` set):

    OTEL_PROPAGATORS=tracecontext,baggage,ops_session \
        .venv/bin/uvicorn examples.fastapi_app.app:app --host 127.0.0.1 --port 5000

Each `/hop` route calls the Flask example's `/session` with a different client, so one session
spans both services. The first three send the header through ops-session's one-line client hooks;
`/hop/propagator` has no hook and relies on `OTEL_PROPAGATORS` naming `ops_session`.
`/hop/django` calls the Flask example's `/hop`, which calls the Django example.
`/task` publishes the `summarize` task that `examples/worker` runs (Redis at `CELERY_BROKER_URL`),
by name, so this example needs no code of the worker's; the task runs in the request's session.

`/chat` serves a chat page that keeps the session the first response gave it, sends it on every
`fetch` to `/chat/turn`, and opens `/chat/ws?session_id=...` (browsers cannot set headers on a
websocket handshake, so the middleware also reads the `session_id` query parameter). With
`LLM_BASE_URL` set (an OpenAI-compatible server, such as `tools/model_server.py`), each turn asks
the model `LLM_MODEL` through `mirascope.llm` (see `assistant.py`); otherwise it echoes. With
`MCP_SERVER_URL` set (the MCP server example's endpoint, such as `http://127.0.0.1:5003/mcp`),
each turn also files its message with that server's `remember` tool, over one connection that
every conversation shares, each call in its turn's session and trace (see `notes.py`).
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import requests
from celery import Celery
from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

import ops_session.httpx
import ops_session.requests
from ops_session import SESSION_HEADER_NAME, SessionMiddleware, current_session
from ops_session.celery import propagate_sessions
from ops_session.otel import SessionSpanProcessor

if TYPE_CHECKING:
    from .assistant import Assistant
    from .notes import Notes

FLASK_APP_URL = os.environ.get("FLASK_APP_URL", "http://127.0.0.1:5001")
ATTRIBUTES = {"app": "chat-demo"}
# Pages on these origins may call the chat routes (any port of a loopback host by default).
CHAT_ORIGINS = os.environ.get("CHAT_ORIGINS", r"http://(127\.0\.0\.1|localhost)(:\d+)?")
CHAT_PAGE = Path(__file__).parent / "static" / "chat.html"
# The chat's model: an OpenAI-compatible server (`http://127.0.0.2:8000/v1`, say), the model id,
# and the key it wants (a local server ignores it, but the OpenAI client needs one).
LLM_BASE_URL = os.environ.get("LLM_BASE_URL")
LLM_MODEL = os.environ.get("LLM_MODEL", "openai/gpt-4o-mini:completions")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "unused-by-local-servers")
# The MCP server whose `remember` tool each chat turn calls (`examples/mcp_server`), if any.
MCP_SERVER_URL = os.environ.get("MCP_SERVER_URL")


# Telemetry: spans to $SPANS_FILE as JSON lines (standard output when unset), log lines to
# $LOG_FILE (standard error when unset), each stamped with the session. `make demo` reads both.
# With $OTLP_ENDPOINT set (such as Phoenix's http://127.0.0.1:6006/v1/traces), spans are also
# exported there over OTLP/HTTP. With $LLM_BASE_URL set, Mirascope's ops traces into the same
# provider.
LOG_FORMAT = "%(asctime)s {service} session=%(session_id)s %(name)s: %(message)s"


def setup_telemetry(service: str) -> Assistant | None:
    """Install a tracer provider that stamps spans with the session, and a session log handler.

    Returns the chat's assistant when `LLM_BASE_URL` is set.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # First, so every processor after it (any that exports from `on_start` included) sees the
    # session on the span.
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter()))
    if endpoint := os.environ.get("OTLP_ENDPOINT"):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    logging.config.dictConfig(_logging_config(service))
    if not LLM_BASE_URL:
        trace.set_tracer_provider(provider)
        return None
    from .assistant import Assistant, configure_assistant

    # Mirascope's ops makes `provider` the global one as well.
    configure_assistant(provider, base_url=LLM_BASE_URL, api_key=LLM_API_KEY)
    return Assistant(LLM_MODEL)


def _json_lines_exporter() -> ConsoleSpanExporter:
    spans_file = os.environ.get("SPANS_FILE")
    out = open(spans_file, "a", buffering=1, encoding="utf-8") if spans_file else sys.stdout

    def one_line(span: ReadableSpan) -> str:
        return str(span.to_json(indent=None)) + "\n"

    return ConsoleSpanExporter(out=out, formatter=one_line)


def _logging_config(service: str) -> dict[str, Any]:
    log_file = os.environ.get("LOG_FILE")
    handler: dict[str, Any] = (
        {"class": "logging.FileHandler", "filename": log_file, "encoding": "utf-8"}
        if log_file
        else {"class": "logging.StreamHandler"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"session": {"()": "ops_session.logging.SessionLogFilter"}},
        "formatters": {"session": {"format": LOG_FORMAT.format(service=service)}},
        "handlers": {"session": {**handler, "filters": ["session"], "formatter": "session"}},
        "root": {"level": "INFO", "handlers": ["session"]},
    }


assistant = setup_telemetry("fastapi_app")
celery_app = Celery(
    "fastapi_app", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
)
# Before OpenTelemetry's Celery instrumentation, so the publishing span is inside the session.
propagate_sessions(celery_app)
HTTPXClientInstrumentor().instrument()
RequestsInstrumentor().instrument()
CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
log = logging.getLogger("fastapi_app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    with (
        ops_session.httpx.send_session(httpx.Client(base_url=FLASK_APP_URL)) as sync_client,
        ops_session.requests.send_session(requests.Session()) as requests_session,
    ):
        async with (
            ops_session.httpx.send_session(httpx.AsyncClient(base_url=FLASK_APP_URL)) as client,
            httpx.AsyncClient(base_url=FLASK_APP_URL) as propagated_client,
            AsyncExitStack() as stack,
        ):
            yield {
                "client": client,
                "sync_client": sync_client,
                "requests_session": requests_session,
                "propagated_client": propagated_client,
                "notes": await stack.enter_async_context(open_notes(MCP_SERVER_URL))
                if MCP_SERVER_URL
                else None,
            }


def open_notes(url: str) -> AbstractAsyncContextManager[Notes]:
    """The chat's one connection to the MCP server at `url` (imported only when it is set)."""
    from .notes import connected_notes

    return connected_notes(url)


app = FastAPI(lifespan=lifespan)
# OpenTelemetry's middleware goes in first, so the session middleware runs outside it and the
# server span is started inside the session.
app.add_middleware(OpenTelemetryMiddleware)
# The query parameter carries the id where a browser cannot send the header: websockets.
app.add_middleware(SessionMiddleware, attributes=ATTRIBUTES, query_param="session_id")
# Added last, so it runs first: it answers preflight requests without starting a session, and
# lets pages on other origins send the session header and read it from responses.
app.add_middleware(
    CORSMiddleware,
    allow_origin_regex=CHAT_ORIGINS,
    allow_methods=["GET", "POST"],
    allow_headers=["Content-Type", SESSION_HEADER_NAME],
    expose_headers=[SESSION_HEADER_NAME],
)


def seen_here(request: Request) -> dict[str, Any]:
    current = current_session()
    assert current is not None, "every request runs inside the middleware's session"
    return {
        "service": "fastapi_app",
        "session_id": current.id,
        "attributes": dict(current.attributes or {}),
        "received_header": request.headers.get(SESSION_HEADER_NAME),
    }


@app.get("/session")
async def read_session(request: Request) -> dict[str, Any]:
    """What this service sees of the session it is running in."""
    log.info("reading the session")
    return seen_here(request)


@app.get("/hop")
async def hop(request: Request) -> dict[str, Any]:
    """Call the Flask example with httpx's async client, hooked by `send_session`."""
    log.info("calling the Flask example with httpx.AsyncClient")
    response = await request.state.client.get("/session")
    return {"fastapi_app": seen_here(request), "flask_app": response.raise_for_status().json()}


@app.get("/hop/httpx-sync")
def hop_httpx_sync(request: Request) -> dict[str, Any]:
    """The same with httpx's sync client; FastAPI runs this handler in a worker thread."""
    log.info("calling the Flask example with httpx.Client")
    response = request.state.sync_client.get("/session")
    return {"fastapi_app": seen_here(request), "flask_app": response.raise_for_status().json()}


@app.get("/hop/requests")
def hop_requests(request: Request) -> dict[str, Any]:
    """The same with a `requests.Session` that `send_session` mounted its adapter on."""
    log.info("calling the Flask example with requests")
    response = request.state.requests_session.get(f"{FLASK_APP_URL}/session", timeout=10)
    response.raise_for_status()
    return {"fastapi_app": seen_here(request), "flask_app": response.json()}


@app.get("/hop/propagator")
async def hop_propagator(request: Request) -> dict[str, Any]:
    """The same with a plain httpx client: only OpenTelemetry's propagators add the header."""
    log.info("calling the Flask example with an OpenTelemetry-instrumented httpx.AsyncClient")
    response = await request.state.propagated_client.get("/session")
    return {"fastapi_app": seen_here(request), "flask_app": response.raise_for_status().json()}


@app.get("/hop/django")
async def hop_django(request: Request) -> dict[str, Any]:
    """Call the Flask example's `/hop`, which calls the Django example: three services."""
    log.info("calling the Flask example, which calls the Django example")
    response = await request.state.client.get("/hop")
    return {"fastapi_app": seen_here(request), **response.raise_for_status().json()}


@app.get("/task")
def publish_task(request: Request) -> dict[str, Any]:
    """Publish the worker example's `summarize` task; the worker runs it in this session."""
    log.info("publishing a summarize task")
    sent = celery_app.send_task(
        "examples.worker.tasks.summarize", ("a long conversation",), ignore_result=True
    )
    return {"fastapi_app": seen_here(request), "task_id": sent.id}


chat_turns: Counter[str] = Counter()


@app.get("/chat")
async def chat_page() -> FileResponse:
    """The chat page: plain HTML and JavaScript."""
    return FileResponse(CHAT_PAGE)


@app.post("/chat/turn")
async def chat_turn(request: Request, turn: dict[str, str]) -> dict[str, Any]:
    """One turn over `fetch`: the page sends the session header it got from the first reply.

    With `MCP_SERVER_URL` set, the turn first files its message with the MCP server's
    `remember` tool, in this request's session, and answers with the conversation's notes.
    """
    session_id = seen_here_id()
    chat_turns[session_id] += 1
    number = chat_turns[session_id]
    log.info("chat turn %d over fetch", number)
    message = turn.get("message", "")[:200]
    answer: dict[str, Any] = {"session_id": session_id, "turn": number}
    notes: Notes | None = request.state.notes
    if notes is not None:
        answer["notes"] = await notes.remember(message)
    if assistant is None:
        reply = f"Turn {number}: you said {message!r}."
    else:
        reply = await assistant.reply(session_id, message)
    show_turn(message, reply)
    return {**answer, "reply": reply}


def show_turn(message: str, reply: str) -> None:
    """Put the turn's input and output on the request's server span, the root of its trace.

    Phoenix shows each turn of a session from its root span's OpenInference `input.value` and
    `output.value`; an LLM span below it only adds its token counts. Like the session's
    attributes, these leave the process with the spans.
    """
    trace.get_current_span().set_attributes(
        {
            "input.value": message,
            "input.mime_type": "text/plain",
            "output.value": reply,
            "output.mime_type": "text/plain",
        }
    )


@app.websocket("/chat/ws")
async def chat_socket(websocket: WebSocket) -> None:
    """Messages over a websocket that the page opened with `?session_id=<its session>`."""
    await websocket.accept()
    async for message in websocket.iter_text():
        session_id = seen_here_id()
        log.info("chat message over the websocket")
        reply = f"Over the websocket: you said {message[:200]!r}."
        await websocket.send_json({"session_id": session_id, "reply": reply})


def seen_here_id() -> str:
    current = current_session()
    assert current is not None, "every request runs inside the middleware's session"
    return current.id
