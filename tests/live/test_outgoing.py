"""The allow-list against a separate server process listening on three loopback addresses.

127.0.0.1, 127.0.0.2 and 127.0.0.3 stand for three hosts (Linux routes 127.0.0.0/8 to the
loopback interface); one process serves the same port on each, so redirects cross hosts.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator

import aiohttp
import httpx
import httpx2
import pytest
import requests
from tools.loopback import free_port, started

import ops_session.httpx
import ops_session.httpx2
import ops_session.requests
from ops_session import session
from ops_session.aiohttp import SessionTraceConfig

from ..support.outgoing import ALLOWED, HOSTS, SESSION_ID, Case, allow_list_cases

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    port = free_port()
    command = [sys.executable, "-m", "tests.support.echo_server", str(port), *HOSTS]
    with started(command, port):
        yield {host: f"http://{host}:{port}" for host in HOSTS}


def received_with_httpx(cases: list[Case]) -> list[str]:
    client = httpx.Client(follow_redirects=True, trust_env=False)
    with ops_session.httpx.send_session(client, hosts=ALLOWED), session(id=SESSION_ID):
        return [client.get(url, headers=headers).text for url, headers, _ in cases]


def received_with_httpx2(cases: list[Case]) -> list[str]:
    client = httpx2.Client(follow_redirects=True, trust_env=False)
    with ops_session.httpx2.send_session(client, hosts=ALLOWED), session(id=SESSION_ID):
        return [client.get(url, headers=headers).text for url, headers, _ in cases]


def received_with_requests(cases: list[Case]) -> list[str]:
    with requests.Session() as http, session(id=SESSION_ID):
        http.trust_env = False
        ops_session.requests.send_session(http, hosts=ALLOWED)
        return [http.get(url, headers=headers).text for url, headers, _ in cases]


def received_with_aiohttp(cases: list[Case]) -> list[str]:
    async def run() -> list[str]:
        config = SessionTraceConfig(hosts=ALLOWED)
        async with aiohttp.ClientSession(trace_configs=[config]) as client:
            with session(id=SESSION_ID):
                received = []
                for url, headers, _ in cases:
                    async with client.get(url, headers=headers) as response:
                        received.append(await response.text())
                return received

    return asyncio.run(run())


@pytest.mark.parametrize(
    "received_with",
    [
        pytest.param(received_with_httpx, id="httpx"),
        pytest.param(received_with_httpx2, id="httpx2"),
        pytest.param(received_with_requests, id="requests"),
        pytest.param(received_with_aiohttp, id="aiohttp"),
    ],
)
def test_each_client_sends_the_session_only_to_allowed_hosts(
    servers: dict[str, str], received_with: Callable[[list[Case]], list[str]]
) -> None:
    cases = allow_list_cases(servers)
    assert received_with(cases) == [expected for _, _, expected in cases]
