from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Callable, Iterable

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from ops_session import SESSION_HEADER_NAME, session
from ops_session.aiohttp import SessionTraceConfig

from .support.echo_server import NO_HEADER
from .support.outgoing import (
    ALLOWED,
    NAMES,
    SESSION_ID,
    allow_list_cases,
    default_name_cases,
    name_cases,
)

SetHosts = Callable[[Iterable[str] | None], None]

pytestmark = pytest.mark.anyio


class LoopbackResolver(AbstractResolver):
    """Resolves the test's host names to loopback addresses, as a DNS override would."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = NAMES.get(host.lower(), host)
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


async def echo(client: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    async with client.get(url, headers=headers) as response:
        return await response.text()


async def test_sends_the_session_to_your_own_hosts_by_default(
    loopback_servers: dict[str, str],
) -> None:
    url = loopback_servers["127.0.0.3"]
    async with aiohttp.ClientSession(trace_configs=[SessionTraceConfig()]) as client:
        assert await echo(client, url, {}) == NO_HEADER
        with session(id="aio-1"):
            assert await echo(client, url, {}) == "aio-1"
            assert await echo(client, url, {SESSION_HEADER_NAME: "mine"}) == "mine"


async def test_sends_the_session_only_to_allowed_hosts(loopback_servers: dict[str, str]) -> None:
    config = SessionTraceConfig(hosts=ALLOWED)
    async with aiohttp.ClientSession(trace_configs=[config]) as client:
        with session(id=SESSION_ID):
            for url, headers, expected in allow_list_cases(loopback_servers):
                assert await echo(client, url, headers) == expected, url


async def test_host_names_match_the_patterns(loopback_servers: dict[str, str]) -> None:
    port = int(loopback_servers["127.0.0.1"].rsplit(":", 1)[1])
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver())
    config = SessionTraceConfig(hosts=ALLOWED)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[config]) as client:
        with session(id=SESSION_ID):
            for url, headers, expected in name_cases(port):
                assert await echo(client, url, headers) == expected, url


async def test_without_a_rule_only_your_own_hosts_get_the_id(
    loopback_servers: dict[str, str],
) -> None:
    """Issue 27, point 18: no `hosts=` and no process rule is `@private`, not every host."""
    port = int(loopback_servers["127.0.0.1"].rsplit(":", 1)[1])
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver())
    config = SessionTraceConfig()
    async with aiohttp.ClientSession(connector=connector, trace_configs=[config]) as client:
        with session(id=SESSION_ID):
            for url, headers, expected in default_name_cases(port):
                assert await echo(client, url, headers) == expected, url


async def test_the_process_rule_governs_configs_without_hosts(
    loopback_servers: dict[str, str], process_hosts: SetHosts
) -> None:
    process_hosts(["127.0.0.3"])
    allowed, other = loopback_servers["127.0.0.3"], loopback_servers["127.0.0.2"]
    async with aiohttp.ClientSession(trace_configs=[SessionTraceConfig()]) as client:
        with session(id=SESSION_ID):
            assert await echo(client, allowed, {}) == SESSION_ID
            assert await echo(client, other, {}) == NO_HEADER


async def test_a_redirect_without_a_usable_location_sends_nothing_further(
    loopback_servers: dict[str, str],
) -> None:
    base = loopback_servers["127.0.0.2"]
    async with aiohttp.ClientSession(trace_configs=[SessionTraceConfig()]) as client:
        with session(id=SESSION_ID), pytest.raises(aiohttp.InvalidUrlRedirectClientError):
            await echo(client, f"{base}/redirect?to=http://[bad", {})


async def test_invalid_hosts_name_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"'api\.internal:8080'"):
        SessionTraceConfig(hosts=["api.internal:8080"])


def test_missing_aiohttp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "ops_session.aiohttp")
    with pytest.raises(ImportError, match=r"install 'ops-session\[aiohttp\]'"):
        importlib.import_module("ops_session.aiohttp")
