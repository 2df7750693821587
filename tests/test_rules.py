"""The process-wide outgoing rules: hosts and carrier kinds from code or the environment.

Rules about hosts that are not this machine are tested by matching names, never by sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pytest

from ops_session import OutgoingHosts, set_outgoing_hosts
from ops_session._outgoing import may_carry_session
from ops_session._rules import (
    OUTGOING_CARRIERS_ENV,
    OUTGOING_HOSTS_ENV,
    client_rule,
    note_propagator,
    outgoing_carriers,
    outgoing_hosts,
    say_once,
)
from ops_session._variables import forget_variables

SetHosts = Callable[[Iterable[str] | None], None]
SetCarriers = Callable[[Iterable[str] | None], None]


def test_the_process_rule_is_your_own_hosts_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    assert outgoing_hosts() == OutgoingHosts(["@private"])
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "  ")
    forget_variables()  # read once per process: read the new value
    assert outgoing_hosts() == OutgoingHosts(["@private"])


def test_the_environment_variable_sets_the_process_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "*.internal, api.mycorp.com,,")
    rule = outgoing_hosts()
    assert rule == OutgoingHosts(["*.internal", "api.mycorp.com"])
    assert outgoing_hosts() is rule  # parsed once while the variable stays the same
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "@private,api.mycorp.com")
    forget_variables()  # read once per process: read the new value
    assert outgoing_hosts() == OutgoingHosts(["@private", "api.mycorp.com"])
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "*")
    forget_variables()  # read once per process: read the new value
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


def test_say_once_keeps_a_bounded_memory(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ops_session._rules as outgoing

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


def test_a_hook_following_a_bad_environment_variable_fails_when_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "localhost:8000")
    with pytest.raises(ValueError, match=OUTGOING_HOSTS_ENV):
        client_rule(None)
    assert client_rule(["api.internal"]) == OutgoingHosts(["api.internal"])
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
    forget_variables()  # read once per process: read the new value
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
    forget_variables()  # read once per process: read the new value
    note_propagator()
    assert caplog.records == []


@pytest.mark.usefixtures("fresh_outgoing_log")
def test_the_hooks_rules_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import ops_session._rules as outgoing

    monkeypatch.setattr(outgoing, "_MAX_SAID", 1)
    client_rule(["a.internal"])
    client_rule(["b.internal"])
    assert list(outgoing._client_rules) == [OutgoingHosts(["a.internal"])]
