"""The official MCP SDK, in one process: `send_session` on the client, `continue_sessions` on the
server, over the SDK's in-memory transport. `tests/live/test_mcp.py` runs stdio and streamable
HTTP servers."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client._memory import InMemoryTransport
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer, Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ClientMessageMetadata, ServerMessageMetadata, SessionMessage
from mcp_types import (
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestParamsMeta,
    TextContent,
)
from opentelemetry.trace import SpanKind

from ops_session import SESSION_HEADER_NAME, session
from ops_session._rules import OUTGOING_HOSTS_ENV
from ops_session.mcp import (
    SESSION_META_KEY,
    SessionServerMiddleware,
    SessionWriteStream,
    continue_sessions,
    send_session,
)

from .conftest import Tracing
from .live.apps.mcp_servers import official_server
from .support.hostile import hostile_text
from .support.mcp import check_answers, check_log_lines, check_spans, converse, official_asker

pytestmark = pytest.mark.anyio
MODES = [pytest.param("legacy", id="2025-handshake"), pytest.param("auto", id="2026-07-28")]
BAD_IDS = [*hostile_text(), pytest.param(42, id="number"), pytest.param(["chat-42"], id="list")]


class RecordMeta:
    """A server middleware behind ours that records the session key each request carried."""

    def __init__(self) -> None:
        self.carried: dict[str, object] = {}

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        meta = (ctx.params or {}).get("_meta") or {}
        label = ((ctx.params or {}).get("arguments") or {}).get("label")
        if ctx.method == "tools/call":
            self.carried[str(label)] = meta.get(SESSION_META_KEY)
        return await call_next(ctx)


@pytest.mark.parametrize("mode", MODES)
async def test_two_conversations_keep_their_ids_over_one_connection(
    mode: str, tracing: Tracing, mcp_log_lines: list[str]
) -> None:
    server = official_server(tracing.provider.get_tracer("test"))
    recorder = RecordMeta()
    server.middleware.append(recorder)
    async with Client(send_session(InMemoryTransport(server), url=None), mode=mode) as client:
        seen = await converse(official_asker(client))
    check_answers(seen)
    check_log_lines(mcp_log_lines)
    spans = [json.loads(span.to_json()) for span in tracing.exporter.get_finished_spans()]
    check_spans(spans, server_spans=False)
    # The id crossed as data on each request, not through the shared process context.
    assert {label: carried for label, carried in recorder.carried.items()} == {
        s.label: s.conversation for s in seen if s.kind == "tool"
    }


async def call_whoami(server: MCPServer, meta: dict[str, Any] | None = None) -> Any:
    async with Client(send_session(InMemoryTransport(server), url=None)) as client:
        request_meta = cast(RequestParamsMeta | None, meta)
        content = (await client.call_tool("whoami", {"label": "x"}, meta=request_meta)).content[0]
    assert isinstance(content, TextContent)
    return json.loads(content.text)["session_id"]


async def test_a_handler_runs_in_the_id_its_request_carried_not_the_callers(
    tracing: Tracing,
) -> None:
    server = official_server(tracing.provider.get_tracer("test"))
    with session(id="chat-caller"):
        assert await call_whoami(server, {SESSION_META_KEY: "chat-forwarded"}) == "chat-forwarded"


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_an_invalid_id_runs_the_handler_in_no_session_and_is_never_logged(
    bad: object, tracing: Tracing, caplog: pytest.LogCaptureFixture
) -> None:
    server = official_server(tracing.provider.get_tracer("test"))
    with caplog.at_level(logging.DEBUG, logger="ops_session"), session(id="chat-caller"):
        assert await call_whoami(server, {SESSION_META_KEY: bad}) is None
    (record,) = [r for r in caplog.records if r.name == "ops_session"]
    size = f"{len(bad)} characters" if isinstance(bad, str) else type(bad).__name__
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == f"Invalid _meta session id in an MCP request ({size}): ignored."


async def test_without_a_client_hook_handlers_run_in_no_session(tracing: Tracing) -> None:
    server = official_server(tracing.provider.get_tracer("test"))
    with session(id="chat-caller"):
        async with Client(InMemoryTransport(server)) as client:
            content = (await client.call_tool("whoami", {"label": "x"})).content[0]
    assert isinstance(content, TextContent)
    assert json.loads(content.text)["session_id"] is None


async def test_generate_gives_requests_without_an_id_a_new_session(tracing: Tracing) -> None:
    server = official_server(tracing.provider.get_tracer("test"), continue_sessions=False)
    continue_sessions(server, generate=True)
    first, second = await call_whoami(server), await call_whoami(server)
    assert first and second and first != second
    with session(id="chat-42"):
        assert await call_whoami(server) == "chat-42"


async def test_a_server_span_opened_before_the_session_gets_its_id(tracing: Tracing) -> None:
    """An instrumentation's middleware outside ours: the session stamps its SERVER span."""
    tracer = tracing.provider.get_tracer("test")
    server = official_server(tracer)

    async def server_span(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        with tracer.start_as_current_span(f"serve {ctx.method}", kind=SpanKind.SERVER):
            return await call_next(ctx)

    server.middleware.insert(0, server_span)
    await call_whoami(server, {SESSION_META_KEY: "chat-42"})  # the span starts in no session
    [span] = [s for s in tracing.exporter.get_finished_spans() if s.name == "serve tools/call"]
    assert span.attributes is not None and span.attributes["session.id"] == "chat-42"


async def test_an_exception_leaving_a_handler_names_the_session() -> None:
    server: Server[Any] = Server("failing")
    notes: list[str] = []

    async def record_notes(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        try:
            return await call_next(ctx)
        except Exception as error:
            notes.extend(getattr(error, "__notes__", []))
            raise

    async def fail(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/call":
            raise RuntimeError("tool failed")
        return await call_next(ctx)

    server.middleware[:0] = [record_notes, SessionServerMiddleware(), fail]
    async with Client(send_session(InMemoryTransport(server), url=None)) as client:
        with session(id="chat-42"), pytest.raises(MCPError, match="Internal server error"):
            await client.call_tool("anything", {})
        with pytest.raises(MCPError, match="Internal server error"):
            await client.call_tool("anything", {})  # outside any session: no note
    assert notes == ["ops-session: raised in session chat-42"]


def test_continue_sessions_puts_one_middleware_first() -> None:
    server = MCPServer("tools")
    assert continue_sessions(server) is server
    assert continue_sessions(server) is server
    assert isinstance(server.middleware[0], SessionServerMiddleware)
    assert sum(isinstance(m, SessionServerMiddleware) for m in server.middleware) == 1
    low_level: Server[Any] = Server("low-level")
    assert continue_sessions(low_level, generate=True).middleware[0].generate is True  # type: ignore[attr-defined]


def test_continue_sessions_refuses_another_setting_or_another_object() -> None:
    server = continue_sessions(MCPServer("tools"))
    with pytest.raises(ValueError, match="already called for this server with generate=False"):
        continue_sessions(server, generate=True)
    with pytest.raises(TypeError, match="needs an mcp.server.Server or MCPServer, got str"):
        continue_sessions("tools")  # type: ignore[type-var]


@pytest.mark.parametrize("url", ["localhost:8000", "/mcp", "", "http:///mcp"])
def test_send_session_needs_an_absolute_url_or_none(url: str) -> None:
    with pytest.raises(ValueError, match="Expected the MCP endpoint's absolute URL"):
        send_session(InMemoryTransport(MCPServer("tools")), url=url)


async def through(stream_host: str | None, item: SessionMessage) -> SessionMessage:
    """What a `SessionWriteStream` for `stream_host` passes on for `item`."""
    send, receive = anyio.create_memory_object_stream[SessionMessage](1)
    async with SessionWriteStream(send, host=stream_host) as stream, receive:
        await stream.send(item)
        return await receive.receive()


def call(meta: dict[str, Any] | None = None, metadata: Any = None) -> SessionMessage:
    params: dict[str, Any] = {"name": "whoami"}
    if meta is not None:
        params["_meta"] = meta
    return SessionMessage(
        JSONRPCRequest(jsonrpc="2.0", id=1, method="tools/call", params=params), metadata
    )


def carried(item: SessionMessage) -> tuple[object, dict[str, str] | None]:
    """The `_meta` session key and the HTTP headers an outgoing message carries."""
    message = item.message
    assert isinstance(message, JSONRPCRequest | JSONRPCNotification)
    meta = (message.params or {}).get("_meta", {})
    headers = item.metadata.headers if isinstance(item.metadata, ClientMessageMetadata) else None
    return meta.get(SESSION_META_KEY), headers


async def test_requests_carry_the_id_in_meta_and_over_http_in_the_header() -> None:
    with session(id="chat-42"):
        assert carried(await through(None, call())) == ("chat-42", None)
        assert carried(await through("tools.internal", call())) == (
            "chat-42",
            {SESSION_HEADER_NAME: "chat-42"},
        )
        kept = ClientMessageMetadata(headers={"MCP-Protocol-Version": "2026-07-28"})
        assert carried(await through("tools.internal", call({"progressToken": 1}, kept))) == (
            "chat-42",
            {"MCP-Protocol-Version": "2026-07-28", SESSION_HEADER_NAME: "chat-42"},
        )
        note = JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled", params=None)
        assert carried(await through(None, SessionMessage(note))) == ("chat-42", None)


async def test_what_a_caller_set_is_kept_and_other_messages_pass_unchanged() -> None:
    own = ClientMessageMetadata(headers={"mirascope-session-id": "chat-own"})
    response = SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=1, result={}))
    reply = call(metadata=ServerMessageMetadata(related_request_id=3))
    bad_meta = SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=1, method="x", params={"_meta": 7}))
    with session(id="chat-42"):
        assert carried(await through(None, call({SESSION_META_KEY: "chat-own"}))) == (
            "chat-own",
            None,
        )
        assert carried(await through("h.internal", call(metadata=own)))[1] == own.headers
        assert await through("h.internal", response) is response
        assert carried(await through("h.internal", reply)) == ("chat-42", None)
        assert await through(None, bad_meta) is bad_meta
    unchanged = call()
    assert await through("h.internal", unchanged) is unchanged  # outside any session


async def test_the_outgoing_rule_decides_by_host_and_a_local_server_is_localhost(
    process_hosts: Any,
) -> None:
    with session(id="chat-42"):
        # No rule set: a server of this machine (stdio, in-memory) is one of your own hosts.
        assert carried(await through(None, call())) == ("chat-42", None)
        assert carried(await through("api.thirdparty.example", call())) == (None, None)
        process_hosts(["*.internal"])
        assert carried(await through("api.thirdparty.example", call())) == (None, None)
        assert carried(await through("tools.internal", call())) == (
            "chat-42",
            {SESSION_HEADER_NAME: "chat-42"},
        )
        assert carried(await through(None, call())) == (None, None), "the rule leaves out localhost"
        process_hosts(["*.internal", "localhost"])
        assert carried(await through(None, call())) == ("chat-42", None)  # stdio, in-memory
        process_hosts([])
        assert carried(await through("tools.internal", call())) == (None, None)


async def test_send_session_reads_the_rule_at_each_call(
    process_hosts: Any, tracing: Tracing
) -> None:
    """An in-memory connection named after an HTTP host: nothing leaves the process, and the rule
    set after the connection was opened governs its next requests."""
    server = official_server(tracing.provider.get_tracer("test"))
    transport = send_session(InMemoryTransport(server), url="http://api.thirdparty.example/mcp")
    async with Client(transport) as client:
        ask = official_asker(client)
        with session(id="chat-42"):
            process_hosts(["*.internal"])
            refused = json.loads(await ask("tool", "x"))["session_id"]
            process_hosts(["*.internal", "api.thirdparty.example"])
            allowed = json.loads(await ask("tool", "x"))["session_id"]
    assert (refused, allowed) == (None, "chat-42")


@asynccontextmanager
async def over_asgi(server: MCPServer, header: str | None) -> AsyncIterator[Client]:
    """A client of `server`'s streamable-HTTP app, in this process, that sends `header` as the
    session header on every request and writes nothing into `_meta`."""
    app = server.streamable_http_app(json_response=True)
    headers = {} if header is None else {SESSION_HEADER_NAME: header}
    async with server.session_manager.run():
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, headers=headers) as http:
            url = "http://127.0.0.1:8000/mcp"
            async with Client(streamable_http_client(url, http_client=http)) as client:
                yield client


@pytest.mark.parametrize("mode", MODES)
async def test_without_an_id_in_meta_the_http_header_decides(mode: str, tracing: Tracing) -> None:
    server = official_server(tracing.provider.get_tracer("test"))
    async with over_asgi(server, "chat-42") as client:
        assert json.loads(await official_asker(client)("tool", "x"))["session_id"] == "chat-42"
        meta = cast(RequestParamsMeta, {SESSION_META_KEY: "chat-meta"})
        content = (await client.call_tool("whoami", {"label": "y"}, meta=meta)).content[0]
    assert isinstance(content, TextContent)
    assert json.loads(content.text)["session_id"] == "chat-meta", "_meta comes first"


@pytest.mark.parametrize("bad", hostile_text(sendable_only=True))
async def test_an_invalid_header_runs_the_handler_in_no_session(
    bad: str, tracing: Tracing, caplog: pytest.LogCaptureFixture
) -> None:
    server = official_server(tracing.provider.get_tracer("test"))
    with caplog.at_level(logging.DEBUG, logger="ops_session"):
        async with over_asgi(server, bad) as client:
            assert json.loads(await official_asker(client)("tool", "x"))["session_id"] is None
    messages = [r.getMessage() for r in caplog.records if r.name == "ops_session"]
    assert f"Invalid session header in an MCP request ({len(bad)} characters): ignored." in messages


async def test_the_write_stream_closes_the_stream_it_wraps() -> None:
    send, receive = anyio.create_memory_object_stream[SessionMessage](1)
    await SessionWriteStream(send, host=None).aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await send.send(call())
    receive.close()


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp.server", None)
    monkeypatch.delitem(sys.modules, "ops_session.mcp")
    with pytest.raises(ImportError, match=r"install 'ops-session\[mcp\]'"):
        importlib.import_module("ops_session.mcp")


def test_an_invalid_rule_variable_stops_send_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "https://tools.internal")
    with pytest.raises(ValueError, match=rf"{OUTGOING_HOSTS_ENV}='https://tools.internal'"):
        send_session(InMemoryTransport(MCPServer("tools")), url="http://tools.internal/mcp")
