"""Host patterns: `OutgoingHosts`, and `@private`, the default rule (issue 27, point 18).

Rules about hosts that are not this machine are tested by matching names and addresses only.
"""

from __future__ import annotations

import pytest

from ops_session import OutgoingHosts

from .support.hostile import hostile_text

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
        pytest.param("10.0.0.1/8", id="network-with-host-bits"),
        pytest.param("10.0.0.0/33", id="prefix-too-long"),
        pytest.param("api.internal/8", id="name-as-network"),
        pytest.param("@public", id="unknown-keyword"),
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
    assert OutgoingHosts(["@private"]) != OutgoingHosts(["*.internal", "*.local"])
    assert OutgoingHosts(["10.0.0.0/8"]) == OutgoingHosts(["10.0.0.0/8", "10.0.0.0/8"])
    assert list(rule) == list(rule.patterns) == ["*.internal", "API.internal."]
    assert repr(rule) == "OutgoingHosts(['*.internal', 'API.internal.'])"


PRIVATE = OutgoingHosts(["@private"])


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("127.8.9.10", id="loopback-range"),
        pytest.param("[::1]", id="ipv6-loopback"),
        pytest.param("10.0.0.7", id="private-10"),
        pytest.param("172.16.0.1", id="private-172-16"),
        pytest.param("172.31.255.254", id="private-172-31"),
        pytest.param("192.168.1.20", id="private-192-168"),
        pytest.param("169.254.169.254", id="link-local"),
        pytest.param("fd12:3456::1", id="ipv6-unique-local"),
        pytest.param("[fe80::1]", id="ipv6-link-local"),
        pytest.param("fe80::1%eth0", id="ipv6-link-local-with-zone"),
        pytest.param("::ffff:10.0.0.7", id="ipv4-mapped-private"),
        pytest.param("localhost", id="localhost"),
        pytest.param("orders", id="compose-service"),
        pytest.param("Redis.", id="single-label-any-case-trailing-dot"),
        pytest.param("chat_worker", id="single-label-underscore"),
        pytest.param("orders.internal", id="internal"),
        pytest.param("printer.local", id="mdns"),
        pytest.param("orders.default.svc.cluster.local", id="kubernetes-service"),
        pytest.param("app.localhost", id="localhost-subdomain"),
        pytest.param("nas.home.arpa", id="home-arpa"),
    ],
)
def test_private_allows_hosts_plainly_ones_own(host: str) -> None:
    assert PRIVATE.allows(host)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("api.openai.com", id="llm-provider"),
        pytest.param("api.stripe.com", id="payments"),
        pytest.param("8.8.8.8", id="public-ipv4"),
        pytest.param("172.32.0.1", id="just-past-172-16-12"),
        pytest.param("100.64.0.1", id="carrier-grade-nat"),
        pytest.param("2001:4860:4860::8888", id="public-ipv6"),
        pytest.param("::ffff:8.8.8.8", id="ipv4-mapped-public"),
        pytest.param("134744072", id="decimal-ipv4-of-8-8-8-8"),
        pytest.param("0x08080808", id="hex-ipv4-of-8-8-8-8"),
        pytest.param("010.010.010.010", id="octal-dotted"),
        pytest.param("8.8.8", id="short-dotted-ipv4"),
        pytest.param("internal.example.com", id="internal-as-a-label"),
        pytest.param("localhost.example.com", id="localhost-as-a-label"),
        pytest.param("evil.local.example.com", id="local-in-the-middle"),
        pytest.param("orders.default", id="two-labels"),
        pytest.param("orders.svc", id="svc-without-cluster-local"),
        pytest.param("", id="empty"),
        pytest.param("-", id="dash"),
        pytest.param("a b", id="space"),
        pytest.param("\r\n", id="control-characters"),
    ],
)
def test_private_refuses_everything_else(host: str) -> None:
    assert not PRIVATE.allows(host)


def test_private_combines_with_other_patterns() -> None:
    rule = OutgoingHosts(["@private", "api.mycorp.com", "203.0.113.0/24"])
    assert rule.allows("orders") and rule.allows("API.MyCorp.com")
    assert rule.allows("203.0.113.7") and not rule.allows("203.0.114.7")
    assert not rule.allows("api.openai.com")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param("10.1.2.3", True, id="inside"),
        pytest.param("11.0.0.1", False, id="outside"),
        pytest.param("fd00::7", True, id="ipv6-inside"),
        pytest.param("[fd00::7]", True, id="ipv6-bracketed"),
        pytest.param("fe00::7", False, id="ipv6-outside"),
        pytest.param("::ffff:10.9.9.9", True, id="ipv4-mapped"),
        pytest.param("10.example.com", False, id="name-that-starts-with-digits"),
    ],
)
def test_networks_match_the_addresses_inside(host: str, allowed: bool) -> None:
    assert OutgoingHosts(["10.0.0.0/8", "fd00::/8"]).allows(host) is allowed


def test_an_ipv4_mapped_pattern_matches_the_ipv4_address() -> None:
    assert OutgoingHosts(["::ffff:10.0.0.7"]).allows("10.0.0.7")
