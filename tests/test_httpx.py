from __future__ import annotations

import importlib
import sys

import httpx
import pytest

from ops_session import SESSION_HEADER_NAME, session
from ops_session.httpx import add_session_header, add_session_header_async, send_session


def test_sync_client_sends_the_session(echo_url: str) -> None:
    with send_session(httpx.Client(base_url=echo_url)) as client:
        assert client.get("/").text == "(none)"
        with session(id="hx-1"):
            assert client.get("/").text == "hx-1"
            assert client.get("/", headers={SESSION_HEADER_NAME: "mine"}).text == "mine"
        assert client.get("/").text == "(none)"


@pytest.mark.anyio
async def test_async_client_sends_the_session(echo_url: str) -> None:
    async with send_session(httpx.AsyncClient(base_url=echo_url)) as client:
        assert (await client.get("/")).text == "(none)"
        with session(id="hx-2"):
            assert (await client.get("/")).text == "hx-2"


def test_send_session_picks_the_hook_and_registers_it_once() -> None:
    sync_client = send_session(send_session(httpx.Client()))
    async_client = send_session(httpx.AsyncClient())
    assert sync_client.event_hooks["request"] == [add_session_header]
    assert async_client.event_hooks["request"] == [add_session_header_async]
    sync_client.close()


def test_missing_httpx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.delitem(sys.modules, "ops_session.httpx")
    with pytest.raises(ImportError, match=r"install 'ops-session\[httpx\]'"):
        importlib.import_module("ops_session.httpx")
