from __future__ import annotations

import importlib
import sys

import pytest
import requests

from ops_session import SESSION_HEADER_NAME, session
from ops_session.requests import SessionAdapter, send_session


def test_requests_session_sends_the_session(echo_url: str) -> None:
    with send_session(requests.Session(), max_retries=2) as http:
        assert http.get(echo_url).text == "(none)"
        with session(id="rq-1"):
            assert http.get(echo_url).text == "rq-1"
            assert http.get(echo_url, headers={SESSION_HEADER_NAME: "mine"}).text == "mine"
        assert http.get(echo_url).text == "(none)"
        adapter = http.get_adapter("https://example.invalid")
        assert isinstance(adapter, SessionAdapter) and adapter.max_retries.total == 2


def test_missing_requests_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "requests", None)
    monkeypatch.delitem(sys.modules, "ops_session.requests")
    with pytest.raises(ImportError, match=r"install 'ops-session\[requests\]'"):
        importlib.import_module("ops_session.requests")
