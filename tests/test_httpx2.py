from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable, Iterable

import httpx
import httpx2
import pytest

from ops_session import SESSION_HEADER_NAME, session
from ops_session.httpx2 import (
    AsyncSessionHeaderHook,
    SessionHeaderHook,
    add_session_header,
    add_session_header_async,
    send_session,
)

from .support.echo_server import NO_HEADER
from .support.outgoing import (
    ALLOWED,
    SESSION_ID,
    allow_list_cases,
    default_name_cases,
    name_cases,
)

SetHosts = Callable[[Iterable[str] | None], None]


def test_sync_client_sends_the_session_to_your_own_hosts_by_default(echo_url: str) -> None:
    with send_session(httpx2.Client(base_url=echo_url)) as client:
        assert client.get("/").text == NO_HEADER
        with session(id="hx2-1"):
            assert client.get("/").text == "hx2-1"
            assert client.get("/", headers={SESSION_HEADER_NAME: "mine"}).text == "mine"
        assert client.get("/").text == NO_HEADER


@pytest.mark.anyio
async def test_async_client_sends_the_session_to_your_own_hosts_by_default(echo_url: str) -> None:
    async with send_session(httpx2.AsyncClient(base_url=echo_url)) as client:
        assert (await client.get("/")).text == NO_HEADER
        with session(id="hx2-2"):
            assert (await client.get("/")).text == "hx2-2"


def test_sync_client_sends_the_session_only_to_allowed_hosts(
    loopback_servers: dict[str, str],
) -> None:
    client = send_session(httpx2.Client(follow_redirects=True, trust_env=False), hosts=ALLOWED)
    with client, session(id=SESSION_ID):
        for url, headers, expected in allow_list_cases(loopback_servers):
            assert client.get(url, headers=headers).text == expected, url


@pytest.mark.anyio
async def test_async_client_sends_the_session_only_to_allowed_hosts(
    loopback_servers: dict[str, str],
) -> None:
    client = httpx2.AsyncClient(follow_redirects=True, trust_env=False)
    async with send_session(client, hosts=ALLOWED):
        with session(id=SESSION_ID):
            for url, headers, expected in allow_list_cases(loopback_servers):
                assert (await client.get(url, headers=headers)).text == expected, url


def test_host_names_match_the_patterns(loopback_servers: dict[str, str]) -> None:
    proxy = loopback_servers["127.0.0.1"]
    client = httpx2.Client(proxy=proxy, follow_redirects=True, trust_env=False)
    with send_session(client, hosts=ALLOWED), session(id=SESSION_ID):
        for url, headers, expected in name_cases():
            assert client.get(url, headers=headers).text == expected, url


def test_without_a_rule_only_your_own_hosts_get_the_id(loopback_servers: dict[str, str]) -> None:
    """Issue 27, point 18: no `hosts=` and no process rule is `@private`, not every host."""
    proxy = loopback_servers["127.0.0.1"]
    client = httpx2.Client(proxy=proxy, follow_redirects=True, trust_env=False)
    with send_session(client), session(id=SESSION_ID):
        for url, headers, expected in default_name_cases():
            assert client.get(url, headers=headers).text == expected, url


def test_the_process_rule_governs_clients_without_hosts(
    loopback_servers: dict[str, str], process_hosts: SetHosts
) -> None:
    allowed, other = loopback_servers["127.0.0.2"], loopback_servers["127.0.0.3"]
    following = send_session(httpx2.Client(trust_env=False))
    own_rule = send_session(httpx2.Client(trust_env=False), hosts=["127.0.0.2"])
    process_hosts(["127.0.0.3"])  # after the hooks were built: they read it per request
    with following, own_rule, session(id=SESSION_ID):
        assert following.get(other).text == SESSION_ID
        assert following.get(allowed).text == NO_HEADER
        assert own_rule.get(allowed).text == SESSION_ID
        assert own_rule.get(other).text == NO_HEADER


def test_send_session_picks_the_hook_and_replaces_its_own() -> None:
    def user_hook(request: httpx2.Request) -> None:
        pass

    sync_client = send_session(httpx2.Client(event_hooks={"request": [user_hook]}))
    sync_client = send_session(sync_client, hosts=["*.internal"])
    async_client = send_session(httpx2.AsyncClient())
    [user, hook] = sync_client.event_hooks["request"]
    assert user is user_hook and isinstance(hook, SessionHeaderHook)
    assert hook.hosts is not None and hook.hosts.allows("api.internal")
    [async_hook] = async_client.event_hooks["request"]
    assert isinstance(async_hook, AsyncSessionHeaderHook) and async_hook.hosts is None
    sync_client.close()


def test_module_hooks_register_by_hand(echo_url: str) -> None:
    client = httpx2.Client(base_url=echo_url, event_hooks={"request": [add_session_header]})
    with client, session(id="hx2-3"):
        assert client.get("/").text == "hx2-3"
    assert isinstance(add_session_header_async, AsyncSessionHeaderHook)


def test_send_session_refuses_an_httpx_client() -> None:
    expected = r"ops_session\.httpx\.send_session"
    with httpx.Client() as client, pytest.raises(TypeError, match=expected):
        send_session(client)  # type: ignore[type-var]


def test_send_session_names_a_bad_host_pattern() -> None:
    with httpx2.Client() as client, pytest.raises(ValueError, match=r"'https://api\.internal'"):
        send_session(client, hosts=["https://api.internal"])


def test_works_without_httpx_and_never_imports_it(loopback_servers: dict[str, str]) -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import httpx2, ops_session, ops_session.httpx2\n"
        "client = ops_session.httpx2.send_session(httpx2.Client(), hosts=['127.0.0.2'])\n"
        "with ops_session.session(id='solo'):\n"
        "    print(client.get(sys.argv[1]).text, client.get(sys.argv[2]).text)\n"
    )
    urls = [loopback_servers["127.0.0.2"], loopback_servers["127.0.0.3"]]
    result = subprocess.run(
        [sys.executable, "-c", code, *urls], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["solo", NO_HEADER], result.stderr


def test_missing_httpx2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx2", None)
    monkeypatch.delitem(sys.modules, "ops_session.httpx2")
    with pytest.raises(ImportError, match=r"install 'ops-session\[httpx2\]'"):
        importlib.import_module("ops_session.httpx2")
