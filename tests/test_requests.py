from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from ops_session import SESSION_HEADER_NAME, session
from ops_session.requests import send_session

from .support.echo_server import NO_HEADER
from .support.outgoing import (
    ALLOWED,
    SESSION_ID,
    allow_list_cases,
    default_name_cases,
    name_cases,
)


class RecordingAdapter(HTTPAdapter):
    """An adapter of the user's own, which records the session header of what it sends."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.sent: list[str | None] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(request.headers.get(SESSION_HEADER_NAME))
        return super().send(request, *args, **kwargs)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False
        yield http


def test_sends_the_session_to_your_own_hosts_by_default(
    echo_url: str, http: requests.Session
) -> None:
    send_session(http)
    assert http.get(echo_url).text == NO_HEADER
    with session(id="rq-1"):
        assert http.get(echo_url).text == "rq-1"
        assert http.get(echo_url, headers={SESSION_HEADER_NAME: "mine"}).text == "mine"
    assert http.get(echo_url).text == NO_HEADER


def test_sends_the_session_only_to_allowed_hosts(
    loopback_servers: dict[str, str], http: requests.Session
) -> None:
    send_session(http, hosts=ALLOWED)
    with session(id=SESSION_ID):
        for url, headers, expected in allow_list_cases(loopback_servers):
            assert http.get(url, headers=headers).text == expected, url


def test_host_names_match_the_patterns(
    loopback_servers: dict[str, str], http: requests.Session
) -> None:
    http.proxies = {"http": loopback_servers["127.0.0.1"]}
    send_session(http, hosts=ALLOWED)
    with session(id=SESSION_ID):
        for url, headers, expected in name_cases():
            assert http.get(url, headers=headers).text == expected, url


def test_without_a_rule_only_your_own_hosts_get_the_id(
    loopback_servers: dict[str, str], http: requests.Session
) -> None:
    """Issue 27, point 18: no `hosts=` and no process rule is `@private`, not every host."""
    http.proxies = {"http": loopback_servers["127.0.0.1"]}
    send_session(http)
    with session(id=SESSION_ID):
        for url, headers, expected in default_name_cases():
            assert http.get(url, headers=headers).text == expected, url


def test_keeps_the_users_adapters_and_serves_adapters_mounted_later(
    loopback_servers: dict[str, str], http: requests.Session
) -> None:
    allowed, other = loopback_servers["127.0.0.2"], loopback_servers["127.0.0.3"]
    general = RecordingAdapter(max_retries=3)
    http.mount("http://", general)
    send_session(http, hosts=["127.0.0.2"])
    specific = RecordingAdapter(max_retries=5)
    http.mount(f"{allowed}/", specific)  # later, for one service, with its own retries
    with session(id=SESSION_ID):
        assert http.get(f"{allowed}/").text == SESSION_ID
        assert http.get(f"{other}/").text == NO_HEADER
    assert http.get_adapter(f"{allowed}/x") is specific and specific.max_retries.total == 5
    assert http.get_adapter(f"{other}/x") is general and general.max_retries.total == 3
    assert (specific.sent, general.sent) == ([SESSION_ID], [None])


def test_calling_it_again_replaces_the_rule(
    loopback_servers: dict[str, str], http: requests.Session
) -> None:
    send_session(http, hosts=["127.0.0.2"])
    send_session(http, hosts=["127.0.0.3"])
    with session(id=SESSION_ID):
        assert http.get(loopback_servers["127.0.0.2"]).text == NO_HEADER
        assert http.get(loopback_servers["127.0.0.3"]).text == SESSION_ID


def test_the_environment_variable_governs_sessions_without_hosts(
    loopback_servers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_SESSION_OUTGOING_HOSTS", " 127.0.0.3 , *.internal,")
    allowed, other = loopback_servers["127.0.0.3"], loopback_servers["127.0.0.2"]
    with send_session(requests.Session()) as following:
        with send_session(requests.Session(), hosts=["127.0.0.2"]) as own_rule:
            with session(id=SESSION_ID):
                assert following.get(allowed).text == SESSION_ID
                assert following.get(other).text == NO_HEADER
                assert own_rule.get(other).text == SESSION_ID
                assert own_rule.get(allowed).text == NO_HEADER


def test_missing_requests_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "requests", None)
    monkeypatch.delitem(sys.modules, "ops_session.requests")
    with pytest.raises(ImportError, match=r"install 'ops-session\[requests\]'"):
        importlib.import_module("ops_session.requests")
