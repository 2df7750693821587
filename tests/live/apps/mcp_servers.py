"""MCP servers of both SDKs for the MCP tests: the official `MCPServer` and fastmcp's `FastMCP`.

Each serves the tool `whoami(label)`, the resource template `session://whoami/{label}` and the
prompt `whoami(label)`. Every handler waits a little (so that calls of two conversations
interleave), starts a span with the label, writes one log line, and answers with JSON naming the
label and the session it ran in (`null` outside any).

In-process tests build a server with the test's own tracer and logger. Run as a process, the
module sets up telemetry of its own from the environment: spans as JSON lines to `$SPANS_FILE`
(the SDK's own server spans included, through the process's global tracer provider) and log
lines to `$LOG_FILE`, both stamped with the session. `python -m tests.live.apps.mcp_servers
official|fastmcp` serves stdio; the `*_http_app` functions are uvicorn factories.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
from typing import Any

import anyio
import fastmcp
from mcp.server import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import Tracer
from starlette.types import ASGIApp

import ops_session.fastmcp
import ops_session.mcp
from ops_session import SessionMiddleware, current_session
from ops_session.logging import SessionLogFilter
from ops_session.otel import SessionSpanProcessor

LOG_FORMAT = "session=%(session_id)s %(message)s"
log = logging.getLogger("mcp_server")


async def seen(kind: str, label: str, tracer: Tracer) -> str:
    """What one handler saw of the session, after a wait that lets other calls run."""
    before = current_session()
    await anyio.sleep(random.random() / 100)
    current = current_session()
    assert current is before, "the session changed while the handler was waiting"
    with tracer.start_as_current_span(f"{kind} body", attributes={"label": label}):
        log.info("%s ran label=%s", kind, label)
    return json.dumps({"kind": kind, "label": label, "session_id": current.id if current else None})


def official_server(tracer: Tracer, *, continue_sessions: bool = True) -> MCPServer:
    """The official SDK's server, with `ops_session.mcp.continue_sessions` unless told not to."""
    server = MCPServer("sessions-official")

    @server.tool()
    async def whoami(label: str) -> str:
        return await seen("tool", label, tracer)

    @server.resource("session://whoami/{label}")
    async def whoami_resource(label: str) -> str:
        return await seen("resource", label, tracer)

    @server.prompt()
    async def whoami_prompt(label: str) -> str:
        return await seen("prompt", label, tracer)

    return ops_session.mcp.continue_sessions(server) if continue_sessions else server


def fastmcp_server(tracer: Tracer) -> fastmcp.FastMCP[Any]:
    """fastmcp's server, with `ops_session.fastmcp.continue_sessions`."""
    server: fastmcp.FastMCP[Any] = fastmcp.FastMCP("sessions-fastmcp")

    @server.tool
    async def whoami(label: str) -> str:
        return await seen("tool", label, tracer)

    @server.resource("session://whoami/{label}")
    async def whoami_resource(label: str) -> str:
        return await seen("resource", label, tracer)

    @server.prompt(name="whoami_prompt")
    async def whoami_prompt(label: str) -> str:
        return await seen("prompt", label, tracer)

    return ops_session.fastmcp.continue_sessions(server)


def setup_telemetry(service: str) -> Tracer:
    """In a server process: spans to `$SPANS_FILE`, log lines to `$LOG_FILE`, both stamped."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SessionSpanProcessor())
    out = open(os.environ["SPANS_FILE"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def one_line(span: ReadableSpan) -> str:
        return str(span.to_json(indent=None)) + "\n"

    provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=one_line))
    )
    trace.set_tracer_provider(provider)  # this process's own: the SDK's server spans use it
    handler = logging.FileHandler(os.environ["LOG_FILE"], encoding="utf-8")
    handler.addFilter(SessionLogFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return trace.get_tracer("mcp_server")


def official_http_app() -> ASGIApp:
    """uvicorn factory: the official server over streamable HTTP, with our integration."""
    return official_server(setup_telemetry("official")).streamable_http_app()


def fastmcp_http_app() -> ASGIApp:
    """uvicorn factory: the fastmcp server over streamable HTTP, with our integration."""
    return fastmcp_server(setup_telemetry("fastmcp")).http_app()


def todays_http_app() -> ASGIApp:
    """uvicorn factory: the official server as it could be served before `ops_session.mcp`.

    No `continue_sessions`: ops-session's ASGI middleware around the whole app, so each handler
    sees the session of the HTTP request whose header the middleware read (or generated).
    """
    server = official_server(setup_telemetry("today"), continue_sessions=False)
    return SessionMiddleware(server.streamable_http_app())


def main(sdk: str) -> None:
    """Serve stdio with the server of `sdk` (`official` or `fastmcp`)."""
    tracer = setup_telemetry(sdk)
    if sdk == "official":
        official_server(tracer).run("stdio")
    elif sdk == "official-unhooked":
        official_server(tracer, continue_sessions=False).run("stdio")
    else:
        fastmcp_server(tracer).run("stdio", show_banner=False)


if __name__ == "__main__":
    main(sys.argv[1])
