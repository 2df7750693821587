"""The one question every carrier asks (`may_carry_session`), and the id on an HTTP hop.

Rules about hosts that are not this machine are tested by matching names, never by sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pytest

from ops_session import OutgoingHosts, inject_session, session
from ops_session._outgoing import may_carry_session, update_session_header
from ops_session._rules import (
    DEFAULT_CARRIERS,
    OUTGOING_CARRIERS_ENV,
    OUTGOING_HOSTS_ENV,
    outgoing_carriers,
)

SetHosts = Callable[[Iterable[str] | None], None]
SetCarriers = Callable[[Iterable[str] | None], None]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param("orders", True, id="compose-service"),
        pytest.param("orders.internal", True, id="internal"),
        pytest.param("10.0.0.7", True, id="private-address"),
        pytest.param("api.openai.com", False, id="llm-provider"),
        pytest.param("api.mycorp.com", False, id="public-name-needs-a-rule"),
    ],
)
def test_by_default_the_id_goes_only_to_your_own_hosts(
    monkeypatch: pytest.MonkeyPatch, host: str, allowed: bool
) -> None:
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    assert may_carry_session("http", host) is allowed
    with session(id="own-1"):
        headers = update_and_return({}, host)
    assert (headers == {"Mirascope-Session-Id": "own-1"}) is allowed


def update_and_return(headers: dict[str, str], host: str) -> dict[str, str]:
    update_session_header(headers, host, None)
    return headers


def test_hostless_carriers_are_the_job_queues_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTGOING_CARRIERS_ENV, raising=False)
    assert outgoing_carriers() == DEFAULT_CARRIERS
    for kind in ("celery", "rq", "arq", "kafka", "rabbitmq", "ray", "temporal"):
        assert may_carry_session(kind, None), kind
    for kind in ("grpc", "mcp", "http", "other"):
        assert not may_carry_session(kind, None), kind


@pytest.mark.parametrize(
    ("value", "allowed", "refused"),
    [
        pytest.param("grpc, mcp", ["grpc", "mcp"], ["celery", "http"], id="listed"),
        pytest.param("*", ["grpc", "other", "http"], [], id="every-kind"),
        pytest.param("none", [], ["celery", "kafka"], id="none"),
        pytest.param(" ", ["celery"], ["grpc"], id="blank-is-default"),
        pytest.param(" , ,", ["celery"], ["grpc"], id="only-commas-is-default"),
    ],
)
def test_the_carriers_variable_lists_the_hostless_kinds(
    monkeypatch: pytest.MonkeyPatch, value: str, allowed: list[str], refused: list[str]
) -> None:
    monkeypatch.setenv(OUTGOING_CARRIERS_ENV, value)
    for kind in allowed:
        assert may_carry_session(kind, None), kind
    for kind in refused:
        assert not may_carry_session(kind, None), kind


def test_a_carrier_with_a_host_is_judged_by_host_whatever_its_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OUTGOING_CARRIERS_ENV, "none")
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    assert may_carry_session("grpc", "orders.internal")
    assert not may_carry_session("grpc", "pubsub.googleapis.com")
    assert may_carry_session("mcp", "tools.mycorp.com", OutgoingHosts(["tools.mycorp.com"]))


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_a_hostless_refusal_is_said_once_never_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(OUTGOING_CARRIERS_ENV, raising=False)
    caplog.set_level(logging.DEBUG, logger="ops_session")
    for _ in range(3):
        assert not may_carry_session("grpc", None)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'grpc'" in warnings[0].getMessage()
    assert OUTGOING_CARRIERS_ENV in warnings[0].getMessage()
    assert sum(record.levelno == logging.DEBUG for record in caplog.records) == 2


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_http_headers_without_a_host_are_refused_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_session")
    assert not may_carry_session("http", None)
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG and "hook the client" in record.getMessage()


@pytest.mark.usefixtures("fresh_outgoing_log")
@pytest.mark.parametrize(
    ("variable", "value", "host"),
    [
        pytest.param(OUTGOING_HOSTS_ENV, "https://api.internal", "api.internal", id="hosts"),
        pytest.param(OUTGOING_CARRIERS_ENV, "Kafka!", None, id="carriers"),
    ],
)
def test_a_bad_variable_at_request_time_sends_nothing_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
    host: str | None,
) -> None:
    monkeypatch.setenv(variable, value)
    caplog.set_level(logging.WARNING, logger="ops_session")
    assert not may_carry_session("kafka", host)
    assert not may_carry_session("kafka", host)
    (record,) = caplog.records
    assert variable in record.getMessage() and "nowhere" in record.getMessage()


def test_update_session_header_adds_ours_only_where_allowed() -> None:
    rule = OutgoingHosts(["api.internal"])
    headers: dict[str, str] = {}
    update_session_header(headers, "api.internal", rule)
    assert headers == {}, "outside a session nothing is sent"
    with session(id="s-1"):
        update_session_header(headers, "llm.example.com", rule)
        assert headers == {}
        update_session_header(headers, "api.internal", rule)
        assert headers == {"Mirascope-Session-Id": "s-1"}


def test_update_session_header_drops_ours_on_a_hop_elsewhere_and_keeps_the_callers() -> None:
    rule = OutgoingHosts(["api.internal"])
    with session(id="s-1"):
        ours = {"Mirascope-Session-Id": "s-1"}
        update_session_header(ours, "llm.example.com", rule)
        assert ours == {}
        update_session_header(ours, "api.internal", rule)
        assert ours == {"Mirascope-Session-Id": "s-1"}
        theirs = {"Mirascope-Session-Id": "chosen"}
        update_session_header(theirs, "llm.example.com", rule)
        assert theirs == {"Mirascope-Session-Id": "chosen"}
        update_session_header(theirs, "api.internal", rule)
        assert theirs == {"Mirascope-Session-Id": "chosen"}


def test_update_session_header_follows_the_process_rule_without_its_own(
    process_hosts: SetHosts,
) -> None:
    process_hosts(["api.internal"])
    with session(id="s-2"):
        headers: dict[str, str] = {}
        update_session_header(headers, "llm.example.com", None)
        assert headers == {}
        update_session_header(headers, "api.internal", None)
        assert headers == {"Mirascope-Session-Id": "s-2"}


def test_inject_session_without_a_host_writes_where_you_chose() -> None:
    with session(id="inj-1"):
        assert inject_session({}) == {"Mirascope-Session-Id": "inj-1"}
        assert inject_session({"mirascope-session-id": "x"}) == {"mirascope-session-id": "x"}


def test_inject_session_with_a_host_keeps_to_the_rule_on_every_hop(
    process_hosts: SetHosts,
) -> None:
    """Issue 27, point 2: called again with a redirect's host, ours does not follow the hop."""
    process_hosts(["api.internal"])
    assert inject_session({}, host="api.internal") == {}, "outside a session nothing changes"
    with session(id="inj-2"):
        headers = inject_session({"Accept": "*/*"}, host="api.internal")
        assert headers == {"Accept": "*/*", "Mirascope-Session-Id": "inj-2"}
        hop = dict(headers)  # what a client copies to the redirect's request
        assert inject_session(hop, host="objects.example.com") == {"Accept": "*/*"}
        lower = {"mirascope-session-id": "inj-2"}
        assert inject_session(lower, host="objects.example.com") == {}
        assert inject_session({}, host="objects.example.com") == {}
        theirs = {"Mirascope-Session-Id": "forwarded"}
        assert inject_session(theirs, host="objects.example.com") == theirs
        assert inject_session(dict(headers), host="api.internal") == headers


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_a_bad_header_variable_at_request_time_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
    headers: dict[str, str] = {}
    with session(id="s-3"):
        update_session_header(headers, "orders.internal", None)
    assert headers == {}
