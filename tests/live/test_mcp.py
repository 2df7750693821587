"""Two conversations over one MCP connection, against real server processes of both SDKs.

Servers (`apps/mcp_servers.py`) run as subprocesses: over stdio, started by the client SDK, and
over streamable HTTP under uvicorn on a 127.0.0.1 ephemeral port. Each writes its spans (the
SDK's own server spans included) and log lines to files. An agent in the test process holds
conversations A and B at once over one client connection, plus calls outside any session; every
answer, log line and server span must carry its own conversation's id.

The first test records how things stood before `ops_session.mcp`: ops-session's ASGI middleware
around a stateful streamable-HTTP server, with `send_session` on the MCP client's httpx2 client.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastmcp
import httpx2
import mcp
import pytest
from fastmcp.client.transports import StdioTransport
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from tools.files import complete_lines
from tools.loopback import ROOT, free_port, running, uvicorn_command

import ops_session.fastmcp
import ops_session.httpx2
import ops_session.mcp
from ops_session import SESSION_HEADER_NAME, is_valid_session_id, session

from ..support.mcp import (
    CONVERSATIONS,
    Ask,
    check_answers,
    check_log_lines,
    check_spans,
    converse,
    fastmcp_asker,
    official_asker,
)

pytestmark = [pytest.mark.servers, pytest.mark.anyio]

APPS = "tests.live.apps.mcp_servers"
STDIO_MODULE = ["-m", APPS]
SPAN_WAIT = 10.0


@dataclass(frozen=True)
class Files:
    """Where a server process writes its spans and log lines."""

    spans: Path
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SPANS_FILE": str(self.spans), "LOG_FILE": str(self.log), "PYTHONPATH": str(ROOT)}

    def spans_when(self, count: int) -> list[dict[str, Any]]:
        """The spans written so far, once there are `count` handler spans among them."""
        deadline = time.monotonic() + SPAN_WAIT
        while True:
            spans = [json.loads(line) for line in complete_lines(self.spans)]
            if sum("label" in span["attributes"] for span in spans) >= count:
                return spans
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(spans)} spans in {self.spans}")
            time.sleep(0.05)

    def log_lines(self) -> list[str]:
        return complete_lines(self.log)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path / "spans.jsonl", tmp_path / "server.log")


@contextmanager
def http_server(factory: str, files: Files) -> Iterator[str]:
    """A uvicorn process serving `factory`; yields the MCP endpoint's URL."""
    port = free_port()
    command = uvicorn_command(f"{APPS}:{factory}", port, "--factory")
    with running(command, port, env=files.env) as base:
        yield f"{base}/mcp"


@asynccontextmanager
async def official_http(url: str, *, mode: str) -> AsyncIterator[Ask]:
    async with httpx2.AsyncClient(timeout=10) as http:
        transport = ops_session.mcp.send_session(
            streamable_http_client(url, http_client=http), url=url
        )
        async with mcp.Client(transport, mode=mode) as client:
            yield official_asker(client)


def stdio_parameters(sdk: str, files: Files) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=[*STDIO_MODULE, sdk], env=files.env, cwd=ROOT
    )


def check_server(files: Files, *, server_spans: bool = True) -> None:
    check_log_lines(files.log_lines())
    check_spans(files.spans_when(3 * 6), server_spans=server_spans)


async def test_before_this_integration_the_http_header_was_the_only_carrier(
    files: Files, tmp_path: Path
) -> None:
    """What ops-session offered before `ops_session.mcp`, against the real SDKs.

    python-sdk#2208 reports handlers of a stateful streamable-HTTP session running in the
    context of the request that opened it, so that a header-based middleware would give every
    later call the first caller's session. With mcp 2.3 that does not happen for tool results:
    the SDK (python-sdk#2298, in every 2.x release) runs each handler in a copy of the context
    of the HTTP request that delivered its message. What the header alone still gets wrong is
    recorded here: a call outside any session runs in a session the ASGI middleware made up
    for it, a new one per call; and over stdio, where there is no header, both conversations
    run in no session at all.
    """
    with http_server("todays_http_app", files) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            ops_session.httpx2.send_session(http)  # the header on the MCP client's httpx2 client
            transport = streamable_http_client(url, http_client=http)
            async with mcp.Client(transport, mode="legacy") as client:
                seen = await converse(official_asker(client))
    for answer in seen:
        if answer.conversation is not None:
            assert answer.session_id == answer.conversation
        else:
            assert answer.session_id is not None and is_valid_session_id(answer.session_id)
    made_up = [s.session_id for s in seen if s.conversation is None]
    assert len(set(made_up)) == len(made_up), "a new session for every call outside one"

    stdio_files = Files(tmp_path / "stdio.spans.jsonl", tmp_path / "stdio.log")
    transport = stdio_client(stdio_parameters("official-unhooked", stdio_files))
    async with mcp.Client(transport) as client:
        seen = await converse(official_asker(client))
    assert {answer.session_id for answer in seen} == {None}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_official_sdk_over_streamable_http(mode: str, files: Files) -> None:
    with http_server("official_http_app", files) as url:
        async with official_http(url, mode=mode) as ask:
            check_answers(await converse(ask))
    check_server(files)


async def test_official_sdk_over_stdio(files: Files) -> None:
    transport = ops_session.mcp.send_session(
        stdio_client(stdio_parameters("official", files)), url=None
    )
    async with mcp.Client(transport) as client:
        check_answers(await converse(official_asker(client)))
    check_server(files)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_fastmcp_over_streamable_http(mode: str, files: Files) -> None:
    with http_server("fastmcp_http_app", files) as url:
        transport = ops_session.fastmcp.send_session(url)
        async with fastmcp.Client(transport, mode=mode) as client:
            check_answers(await converse(fastmcp_asker(client)))
    check_server(files)


async def test_fastmcp_over_stdio(files: Files) -> None:
    stdio = StdioTransport(
        sys.executable, [*STDIO_MODULE, "fastmcp"], env=files.env, cwd=str(ROOT), keep_alive=False
    )
    async with fastmcp.Client(ops_session.fastmcp.send_session(stdio)) as client:
        check_answers(await converse(fastmcp_asker(client)))
    check_server(files)


async def test_one_sdks_client_and_the_others_server_share_the_key(
    files: Files, tmp_path: Path
) -> None:
    with http_server("fastmcp_http_app", files) as url:
        async with official_http(url, mode="auto") as ask:
            check_answers(await converse(ask))
    check_server(files)
    other = Files(tmp_path / "other.spans.jsonl", tmp_path / "other.log")
    with http_server("official_http_app", other) as url:
        async with fastmcp.Client(ops_session.fastmcp.send_session(url)) as client:
            check_answers(await converse(fastmcp_asker(client)))
    check_server(other)


async def test_a_host_outside_the_outgoing_rule_gets_neither_meta_nor_header(
    files: Files, process_hosts: Any
) -> None:
    """The server reads the header too: an id in either would show in its answer."""
    process_hosts(["*.internal"])
    with http_server("official_http_app", files) as url:
        async with official_http(url, mode="auto") as ask:
            with session(id="chat-a"):
                refused = json.loads(await ask("tool", "chat-a.0"))["session_id"]
            process_hosts(["127.0.0.1"])
            with session(id="chat-a"):
                allowed = json.loads(await ask("tool", "chat-a.1"))["session_id"]
    assert (refused, allowed) == (None, "chat-a")


async def test_mcp_session_id_is_never_read_minted_or_echoed(files: Files) -> None:
    """A 2025 client's stateful session (the SDK mints `Mcp-Session-Id`) and a 2026 request
    that sends one anyway: the handler's session comes from our key alone, and no response
    carries our header."""
    response_headers: list[httpx2.Headers] = []

    async def keep(response: httpx2.Response) -> None:
        response_headers.append(response.headers)

    with http_server("official_http_app", files) as url:
        for mode, headers in (("legacy", {}), ("auto", {"Mcp-Session-Id": "chat-evil"})):
            hooks = {"response": [keep]}
            async with httpx2.AsyncClient(timeout=10, headers=headers, event_hooks=hooks) as http:
                transport = ops_session.mcp.send_session(
                    streamable_http_client(url, http_client=http), url=url
                )
                async with mcp.Client(transport, mode=mode) as client:
                    ask = official_asker(client)
                    outside = json.loads(await ask("tool", "outside.0"))["session_id"]
                    with session(id=CONVERSATIONS[0]):
                        inside = json.loads(await ask("tool", f"{CONVERSATIONS[0]}.0"))
            assert (outside, inside["session_id"]) == (None, CONVERSATIONS[0])
    assert any("mcp-session-id" in headers for headers in response_headers), "the SDK's own"
    assert not any(SESSION_HEADER_NAME in headers for headers in response_headers)
    assert not any(headers.get("mcp-session-id") == "chat-evil" for headers in response_headers)
