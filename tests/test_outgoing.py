from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from ops_session import OutgoingHosts, session, set_outgoing_hosts
from ops_session._outgoing import (
    OUTGOING_HOSTS_ENV,
    client_rule,
    outgoing_hosts,
    update_session_header,
)

from .support.hostile import hostile_text

SetHosts = Callable[[Iterable[str] | None], None]
RULE = OutgoingHosts(["*.internal", "API.MyCorp.com.", "127.0.0.1", "[::1]", "fe80::1"])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param("orders.internal", True, id="subdomain"),
        pytest.param("a.b.internal", True, id="deeper-subdomain"),
        pytest.param("ORDERS.Internal", True, id="any-case"),
        pytest.param("orders.internal.", True, id="trailing-dot"),
        pytest.param("internal", False, id="bare-domain-not-in-wildcard"),
        pytest.param("evilinternal", False, id="suffix-without-dot"),
        pytest.param("internal.evil.com", False, id="domain-as-prefix"),
        pytest.param("api.mycorp.com", True, id="exact-name"),
        pytest.param("api.mycorp.com.", True, id="exact-name-trailing-dot"),
        pytest.param("x.api.mycorp.com", False, id="exact-name-is-not-a-wildcard"),
        pytest.param("mycorp.com", False, id="parent-of-exact-name"),
        pytest.param("127.0.0.1", True, id="ipv4"),
        pytest.param("127.0.0.2", False, id="other-ipv4"),
        pytest.param("127.0.0.1.evil.com", False, id="ipv4-as-prefix"),
        pytest.param("::1", True, id="ipv6"),
        pytest.param("[::1]", True, id="ipv6-bracketed"),
        pytest.param("0:0:0:0:0:0:0:1", True, id="ipv6-long-form"),
        pytest.param("FE80::1", True, id="ipv6-any-case"),
        pytest.param("::2", False, id="other-ipv6"),
        pytest.param("[::1", False, id="broken-ipv6"),
        pytest.param("", False, id="empty"),
        pytest.param("\r\n", False, id="control-characters"),
    ],
)
def test_allows_hosts_by_pattern(host: str, allowed: bool) -> None:
    assert RULE.allows(host) is allowed


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="blank"),
        pytest.param(" api.internal", id="padded"),
        pytest.param("https://api.internal", id="scheme"),
        pytest.param("api.internal:8080", id="port"),
        pytest.param("[::1]:8080", id="ipv6-port"),
        pytest.param("api.internal/v1", id="path"),
        pytest.param("user@api.internal", id="user"),
        pytest.param("a..internal", id="empty-label"),
        pytest.param(".internal", id="leading-dot"),
        pytest.param("*.", id="wildcard-of-nothing"),
        pytest.param("**.internal", id="double-star"),
        pytest.param("*.*", id="two-wildcards"),
        pytest.param("api.*.com", id="wildcard-in-the-middle"),
        pytest.param("*api.com", id="partial-wildcard"),
        pytest.param("*.0.0.1", id="wildcard-over-address"),
        pytest.param("10.1", id="short-ipv4"),
        pytest.param("256.0.0.1", id="ipv4-out-of-range"),
        pytest.param("x" * 64 + ".com", id="label-too-long"),
        pytest.param(".".join(["a" * 60] * 5), id="name-too-long"),
        pytest.param("bücher.example", id="non-ascii"),
        pytest.param("api.internal\r\nX-Evil: 1", id="header-injection"),
        pytest.param("api internal", id="space"),
        pytest.param("api.internal\x00", id="nul"),
        *hostile_text(),
    ],
)
def test_refuses_an_invalid_pattern_and_names_it(pattern: str) -> None:
    with pytest.raises(ValueError) as raised:
        OutgoingHosts(["api.internal", pattern])
    assert repr(pattern) in str(raised.value)


def test_a_single_string_or_a_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"\['api\.internal'\]"):
        OutgoingHosts("api.internal")
    with pytest.raises(TypeError, match="None"):
        OutgoingHosts([None])  # type: ignore[list-item]


def test_star_allows_every_host_and_an_empty_list_none() -> None:
    assert OutgoingHosts(["*"]).allows("anything.example")
    assert not OutgoingHosts([]).allows("localhost")


def test_compares_by_meaning_and_shows_its_patterns() -> None:
    rule = OutgoingHosts(["*.internal", "API.internal."])
    assert rule == OutgoingHosts(["api.internal", "*.internal"])
    assert hash(rule) == hash(OutgoingHosts(["api.internal", "*.internal"]))
    assert rule != OutgoingHosts(["*"]) and rule != ["*.internal"]
    assert list(rule) == list(rule.patterns) == ["*.internal", "API.internal."]
    assert repr(rule) == "OutgoingHosts(['*.internal', 'API.internal.'])"


def test_the_process_rule_is_every_host_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTGOING_HOSTS_ENV, raising=False)
    assert outgoing_hosts() == OutgoingHosts(["*"])
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "  ")
    assert outgoing_hosts() == OutgoingHosts(["*"])


def test_the_environment_variable_sets_the_process_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "*.internal, api.mycorp.com,,")
    rule = outgoing_hosts()
    assert rule == OutgoingHosts(["*.internal", "api.mycorp.com"])
    assert outgoing_hosts() is rule  # parsed once while the variable stays the same
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "127.0.0.1")
    assert outgoing_hosts() == OutgoingHosts(["127.0.0.1"])


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


def test_set_outgoing_hosts_checks_its_patterns(process_hosts: SetHosts) -> None:
    with pytest.raises(ValueError, match="'api.internal:80'"):
        process_hosts(["api.internal:80"])
    assert outgoing_hosts() == OutgoingHosts(["*"]), "a refused rule must not be half set"


def test_update_session_header_adds_ours_only_where_allowed() -> None:
    rule = OutgoingHosts(["api.internal"])
    headers: dict[str, str] = {}
    assert update_session_header(headers, "api.internal", rule, None) is None
    assert headers == {}, "outside a session nothing is sent"
    with session(id="s-1"):
        assert update_session_header(headers, "llm.example.com", rule, None) is None
        assert headers == {}
        assert update_session_header(headers, "api.internal", rule, None) == "s-1"
        assert headers == {"Mirascope-Session-Id": "s-1"}


def test_update_session_header_drops_ours_on_a_hop_elsewhere_and_keeps_the_callers() -> None:
    rule = OutgoingHosts(["api.internal"])
    with session(id="s-1"):
        ours = {"Mirascope-Session-Id": "s-1"}
        assert update_session_header(ours, "llm.example.com", rule, "s-1") is None
        assert ours == {}
        assert update_session_header(ours, "api.internal", rule, None) == "s-1"
        theirs = {"Mirascope-Session-Id": "chosen"}
        assert update_session_header(theirs, "llm.example.com", rule, "s-1") is None
        assert theirs == {"Mirascope-Session-Id": "chosen"}
        assert update_session_header(theirs, "api.internal", rule, None) is None
        assert theirs == {"Mirascope-Session-Id": "chosen"}


def test_update_session_header_follows_the_process_rule_without_its_own(
    process_hosts: SetHosts,
) -> None:
    process_hosts(["api.internal"])
    with session(id="s-2"):
        headers: dict[str, str] = {}
        assert update_session_header(headers, "llm.example.com", None, None) is None
        assert update_session_header(headers, "api.internal", None, None) == "s-2"


def test_a_hook_following_a_bad_environment_variable_fails_when_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OUTGOING_HOSTS_ENV, "localhost:8000")
    with pytest.raises(ValueError, match=OUTGOING_HOSTS_ENV):
        client_rule(None)
    assert client_rule(["api.internal"]) == OutgoingHosts(["api.internal"])
