"""An MCP server whose tool calls run in the session of the conversation that made them.

Run from the repository root:

    .venv/bin/uvicorn examples.mcp_server.app:app --host 127.0.0.1 --port 5003

It is the official MCP SDK's `MCPServer`, served over streamable HTTP at `/mcp`. Its one tool,
`remember(note)`, keeps notes per conversation: `continue_sessions` runs each call in the session
its request carried (`_meta`, else the `Mirascope-Session-Id` header), and the tool files the note
under that session's id, never under the connection, so the conversations an agent holds over
one connection each see their own notes. Each call's server span and log line carry the id.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from collections import OrderedDict, deque
from typing import Any

from mcp.server import MCPServer
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from ops_session import current_session
from ops_session.mcp import continue_sessions
from ops_session.otel import SessionSpanProcessor

# Notes are kept in memory for this many conversations, this many notes each.
MAX_CONVERSATIONS = 1000
MAX_NOTES = 50

# Telemetry: spans to $SPANS_FILE as JSON lines (standard output when unset), log lines to
# $LOG_FILE (standard error when unset), each stamped with the session. `make demo` reads both.
# With $OTLP_ENDPOINT set (such as Phoenix's http://127.0.0.1:6006/v1/traces), spans are also
# exported there over OTLP/HTTP. The SDK's own server span for each call uses this provider, and
# continues the trace of the caller's span from the request's `_meta` (`traceparent`).
LOG_FORMAT = "%(asctime)s {service} session=%(session_id)s %(name)s: %(message)s"


def setup_telemetry(service: str) -> None:
    """Install a tracer provider that stamps spans with the session, and a session log handler."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter()))
    if endpoint := os.environ.get("OTLP_ENDPOINT"):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    logging.config.dictConfig(_logging_config(service))


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
        "loggers": {"mcp_server": {"level": "INFO", "handlers": ["session"], "propagate": False}},
    }


setup_telemetry("mcp_server")
log = logging.getLogger("mcp_server")
notes: OrderedDict[str, deque[str]] = OrderedDict()

mcp = continue_sessions(MCPServer("notes"))


@mcp.tool()
def remember(note: str) -> dict[str, Any]:
    """Keep a note for this conversation; answer with how many notes it holds."""
    current = current_session()
    if current is None:
        log.info("a note without a conversation: not kept")
        return {"session_id": None, "notes": 0}
    kept = notes.setdefault(current.id, deque(maxlen=MAX_NOTES))
    notes.move_to_end(current.id)
    if len(notes) > MAX_CONVERSATIONS:
        notes.popitem(last=False)
    kept.append(note[:200])
    log.info("note %d kept", len(kept))
    return {"session_id": current.id, "notes": len(kept)}


app = mcp.streamable_http_app()
