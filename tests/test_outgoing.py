"""The outgoing rule: the process-wide hosts and carriers, and the one question every carrier asks.

Rules about hosts that are not this machine are tested by matching names, never by sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pytest

from ops_session import OutgoingHosts, inject_session, session, set_outgoing_hosts
from ops_session._outgoing import (
    DEFAULT_CARRIERS,
    OUTGOING_CARRIERS_ENV,
    OUTGOING_HOSTS_ENV,
    client_rule,
    may_carry_session,
    note_propagator,
    outgoing_carriers,
    outgoing_hosts,
    say_once,
    update_session_header,
)

SetHosts = Callable[[Iterable[str] | None], None]
SetCarriers = Callable[[Iterable[str] | None], None]


def test_the_process_rule_is_your_own_hosts_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    assert outgoing_hosts() == OutgoingHosts(["@private"])
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "  ")
    assert outgoing_hosts() == OutgoingHosts(["@private"])


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


def test_the_environment_variable_sets_the_process_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "*.internal, api.mycorp.com,,")
    rule = outgoing_hosts()
    assert rule == OutgoingHosts(["*.internal", "api.mycorp.com"])
    assert outgoing_hosts() is rule  # parsed once while the variable stays the same
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "@private,api.mycorp.com")
    assert outgoing_hosts() == OutgoingHosts(["@private", "api.mycorp.com"])
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "*")
    assert may_carry_session("http", "api.openai.com")


def test_a_bad_environment_variable_names_itself_and_the_pattern(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "api.internal,https://llm.example.com")
    with pytest.raises(ValueError, match=rf"{OUTGOING_HOSTS_ENV}=.*'https://llm\.example\.com'"):
        outgoing_hosts()


def test_set_outgoing_hosts_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, process_hosts: SetHosts
) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "*.internal")
    process_hosts(["api.mycorp.com"])
    assert outgoing_hosts() == OutgoingHosts(["api.mycorp.com"])
    set_outgoing_hosts(None)
    assert outgoing_hosts() == OutgoingHosts(["*.internal"])


def test_set_outgoing_hosts_checks_its_patterns(
    monkeypatch: pytest.MonkeyPatch, process_hosts: SetHosts
) -> None:
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    with pytest.raises(ValueError, match="'api.internal:80'"):
        process_hosts(["api.internal:80"])
    assert outgoing_hosts() == OutgoingHosts(["@private"]), "a refused rule must not be half set"


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


def test_set_outgoing_carriers_wins_and_checks_its_kinds(
    monkeypatch: pytest.MonkeyPatch, process_carriers: SetCarriers
) -> None:
    monkeypatch.setenv(OUTGOING_CARRIERS_ENV, "grpc")
    process_carriers(["mcp"])
    assert outgoing_carriers() == {"mcp"}
    process_carriers([])
    assert not may_carry_session("mcp", None)
    with pytest.raises(ValueError, match="'Celery'"):
        process_carriers(["Celery"])
    with pytest.raises(TypeError, match=r"\['grpc'\]"):
        process_carriers("grpc")
    process_carriers(None)
    assert outgoing_carriers() == {"grpc"}


def test_a_bad_carriers_variable_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTGOING_CARRIERS_ENV, "celery,grpc metadata")
    with pytest.raises(ValueError, match=rf"{OUTGOING_CARRIERS_ENV}=.*'grpc metadata'"):
        outgoing_carriers()


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


def test_say_once_keeps_a_bounded_memory(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ops_session._outgoing as outgoing

    monkeypatch.setattr(outgoing, "_said", set())
    monkeypatch.setattr(outgoing, "_MAX_SAID", 2)
    caplog.set_level(logging.INFO, logger="ops_session")
    for key in ("a", "b", "c", "c"):
        say_once(key, logging.INFO, "said %s", key)
    assert [record.getMessage() for record in caplog.records] == [
        "said a",
        "said b",
        "said c",
        "said c",
    ]
    assert outgoing._said == {"a", "b"}


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


def test_a_hook_following_a_bad_environment_variable_fails_when_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "localhost:8000")
    with pytest.raises(ValueError, match=OUTGOING_HOSTS_ENV):
        client_rule(None)
    assert client_rule(["api.internal"]) == OutgoingHosts(["api.internal"])
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
    with pytest.raises(ValueError, match="OPS_SESSION_HEADER_NAME"):
        client_rule(["api.internal"])


@pytest.mark.usefixtures("fresh_outgoing_log")
@pytest.mark.parametrize("propagator_first", [False, True], ids=["hook-first", "propagator-first"])
def test_startup_says_when_the_propagator_would_send_past_a_hooks_hosts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, propagator_first: bool
) -> None:
    """Issue 27, point 18: a hook's `hosts=` does not bind the propagator; say so, once."""
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    caplog.set_level(logging.WARNING, logger="ops_session")
    if propagator_first:
        note_propagator()
    client_rule(["orders.internal"])
    client_rule(["billing.internal"])
    if not propagator_first:
        note_propagator()
    (record,) = caplog.records
    message = record.getMessage()
    assert "['@private']" in message and "orders.internal" in message
    assert "OTEL_PROPAGATORS" in message


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_startup_is_quiet_when_hooks_and_the_process_agree(
    caplog: pytest.LogCaptureFixture, process_hosts: SetHosts
) -> None:
    caplog.set_level(logging.WARNING, logger="ops_session")
    process_hosts(["*.internal"])
    client_rule(["*.internal"])
    note_propagator()
    client_rule(None)
    assert caplog.records == []
    process_hosts(["*"])  # the process rule changed: now the propagator sends further
    assert len(caplog.records) == 1


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_startup_check_leaves_a_bad_variable_to_where_it_is_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ops_session")
    client_rule(["orders.internal"])
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "https://bad")
    note_propagator()
    assert caplog.records == []


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_a_bad_header_variable_at_request_time_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
    headers: dict[str, str] = {}
    with session(id="s-3"):
        update_session_header(headers, "orders.internal", None)
    assert headers == {}


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_the_hooks_rules_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import ops_session._outgoing as outgoing

    monkeypatch.setattr(outgoing, "_MAX_SAID", 1)
    client_rule(["a.internal"])
    client_rule(["b.internal"])
    assert list(outgoing._client_rules) == [OutgoingHosts(["a.internal"])]
