"""fastmcp, in one process: `send_session` on the client, `continue_sessions` on the server, over
fastmcp's in-memory transport. `tests/live/test_mcp.py` runs stdio and streamable HTTP servers."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Any

import anyio
import fastmcp
import pytest
from fastmcp.client.transports import (
    ClientTransport,
    FastMCPTransport,
    SSETransport,
    StdioTransport,
    StreamableHttpTransport,
)
from fastmcp.client.transports.config import MCPConfigTransport
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp import ClientSession
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp_types import TextContent

from ops_session import current_session, session
from ops_session._rules import OUTGOING_HOSTS_ENV
from ops_session.fastmcp import (
    SESSION_META_KEY,
    SessionMiddleware,
    _session_class,
    continue_sessions,
    send_session,
)
from ops_session.mcp import SessionWriteStream

from .conftest import Tracing
from .live.apps.mcp_servers import fastmcp_server
from .support.mcp import check_answers, check_log_lines, check_spans, converse, fastmcp_asker
from .test_mcp import BAD_IDS, MODES

pytestmark = pytest.mark.anyio


class RecordMeta(Middleware):
    """fastmcp middleware behind ours that records the session key each tool call carried."""

    def __init__(self) -> None:
        self.carried: dict[str, object] = {}

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        assert context.fastmcp_context is not None
        request = context.fastmcp_context.request_context
        meta = (request.meta if request is not None else None) or {}
        self.carried[context.message.arguments["label"]] = meta.get(SESSION_META_KEY)
        return await call_next(context)


@pytest.mark.parametrize("mode", MODES)
async def test_two_conversations_keep_their_ids_over_one_connection(
    mode: str,
    tracing: Tracing,
    mcp_log_lines: list[str],
) -> None:
    server = fastmcp_server(tracing.provider.get_tracer("test"))
    recorder = RecordMeta()
    server.add_middleware(recorder)
    async with fastmcp.Client(send_session(server), mode=mode) as client:
        seen = await converse(fastmcp_asker(client))
    check_answers(seen)
    check_log_lines(mcp_log_lines)
    spans = [json.loads(span.to_json()) for span in tracing.exporter.get_finished_spans()]
    check_spans(spans, server_spans=False)
    assert recorder.carried == {s.label: s.conversation for s in seen if s.kind == "tool"}


async def call_whoami(server: fastmcp.FastMCP[Any], meta: dict[str, Any] | None = None) -> Any:
    async with fastmcp.Client(send_session(server)) as client:
        content = (await client.call_tool("whoami", {"label": "x"}, meta=meta)).content[0]
    assert isinstance(content, TextContent)
    return json.loads(content.text)["session_id"]


async def test_a_handler_runs_in_the_id_its_request_carried_not_the_callers(
    tracing: Tracing,
) -> None:
    server = fastmcp_server(tracing.provider.get_tracer("test"))
    with session(id="chat-caller"):
        assert await call_whoami(server, {SESSION_META_KEY: "chat-forwarded"}) == "chat-forwarded"


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_an_invalid_id_runs_the_handler_in_no_session_and_is_never_logged(
    bad: object, tracing: Tracing, caplog: pytest.LogCaptureFixture
) -> None:
    server = fastmcp_server(tracing.provider.get_tracer("test"))
    with caplog.at_level(logging.DEBUG, logger="ops_session"), session(id="chat-caller"):
        assert await call_whoami(server, {SESSION_META_KEY: bad}) is None
    (record,) = [r for r in caplog.records if r.name == "ops_session"]
    size = f"{len(bad)} characters" if isinstance(bad, str) else type(bad).__name__
    assert record.getMessage() == f"Invalid _meta session id in an MCP request ({size}): ignored."


async def test_without_a_client_hook_handlers_run_in_no_session(tracing: Tracing) -> None:
    server = fastmcp_server(tracing.provider.get_tracer("test"))
    with session(id="chat-caller"):
        async with fastmcp.Client(server) as client:
            content = (await client.call_tool("whoami", {"label": "x"})).content[0]
    assert isinstance(content, TextContent)
    assert json.loads(content.text)["session_id"] is None


async def test_generate_gives_requests_without_an_id_a_new_session(tracing: Tracing) -> None:
    server: fastmcp.FastMCP[Any] = fastmcp.FastMCP(
        "tools", middleware=[SessionMiddleware(generate=True)]
    )

    @server.tool
    def whoami(label: str) -> str:
        current = current_session()
        return json.dumps({"session_id": current.id if current else None})

    first, second = await call_whoami(server), await call_whoami(server)
    assert first and second and first != second
    with session(id="chat-42"):
        assert await call_whoami(server) == "chat-42"


def test_continue_sessions_puts_one_middleware_first() -> None:
    server: fastmcp.FastMCP[Any] = fastmcp.FastMCP("tools")
    server.add_middleware(Middleware())
    assert continue_sessions(server) is server
    assert continue_sessions(server) is server
    assert isinstance(server.middleware[0], SessionMiddleware)
    assert sum(isinstance(m, SessionMiddleware) for m in server.middleware) == 1


def test_continue_sessions_refuses_another_setting_or_another_object() -> None:
    server = continue_sessions(fastmcp.FastMCP("tools"))
    with pytest.raises(ValueError, match="already called for this server with generate=False"):
        continue_sessions(server, generate=True)
    with pytest.raises(TypeError, match="needs a fastmcp.FastMCP server, got str"):
        continue_sessions("tools")  # type: ignore[arg-type]


def wrapped(transport: ClientTransport) -> Any:
    """The private wrapper `send_session` returns, for its host."""
    return send_session(transport)


@pytest.mark.parametrize(
    ("transport", "host"),
    [
        pytest.param(
            StreamableHttpTransport("http://tools.internal:8000/mcp"), "tools.internal", id="http"
        ),
        pytest.param(SSETransport("http://[::1]:8000/sse"), "::1", id="sse"),
        pytest.param(StdioTransport("python", ["server.py"]), None, id="stdio"),
        pytest.param(FastMCPTransport(fastmcp.FastMCP("tools")), None, id="in-memory"),
    ],
)
def test_send_session_knows_the_host_of_each_transport(
    transport: ClientTransport, host: str | None
) -> None:
    made = wrapped(transport)
    assert (made.transport, made.host, made.legacy_only) == (transport, host, transport.legacy_only)
    assert send_session(made) is made, "wrapping twice changes nothing"
    assert repr(made) == f"<send_session({transport!r})>"


def test_send_session_infers_a_transport_as_fastmcp_client_does() -> None:
    assert wrapped("https://tools.internal/mcp").host == "tools.internal"  # type: ignore[arg-type]
    assert isinstance(wrapped(fastmcp.FastMCP("tools")).transport, FastMCPTransport)  # type: ignore[arg-type]


def test_send_session_refuses_other_transports() -> None:
    config = MCPConfigTransport({"mcpServers": {"a": {"url": "http://a.internal/mcp"}}})
    with pytest.raises(TypeError, match="got MCPConfigTransport: wrap each server's transport"):
        send_session(config)


async def test_the_session_class_wraps_streams_given_by_name_or_by_position() -> None:
    made = _session_class(ClientSession, None)
    assert _session_class(ClientSession, None) is made
    send, receive = anyio.create_memory_object_stream[Any](1)
    for session_ in (made(receive, send), made(read_stream=receive, write_stream=send)):
        assert isinstance(session_._dispatcher._write_stream, SessionWriteStream)  # type: ignore[attr-defined]
    send.close()
    receive.close()


async def test_closing_the_wrapper_closes_the_transport() -> None:
    stdio = StdioTransport("python", ["server.py"])
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    stdio.close = close  # type: ignore[method-assign]
    await send_session(stdio).close()  # type: ignore[no-untyped-call]
    assert closed == [True]


def test_a_session_given_a_dispatcher_is_left_as_it_is() -> None:
    send, receive = anyio.create_memory_object_stream[Any](1)
    dispatcher = JSONRPCDispatcher[Any](receive, send)
    made = _session_class(ClientSession, "tools.internal")(dispatcher=dispatcher)
    assert made._dispatcher is dispatcher
    send.close()
    receive.close()


def test_missing_fastmcp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastmcp", None)
    monkeypatch.delitem(sys.modules, "ops_session.fastmcp")
    with pytest.raises(ImportError, match=r"install 'ops-session\[fastmcp\]'"):
        importlib.import_module("ops_session.fastmcp")


def test_an_invalid_rule_variable_stops_send_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "https://tools.internal")
    with pytest.raises(ValueError, match=rf"{OUTGOING_HOSTS_ENV}='https://tools.internal'"):
        send_session("http://tools.internal/mcp")
