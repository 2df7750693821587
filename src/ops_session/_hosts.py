"""Host patterns: which hosts a rule lets the session id reach. Stdlib only.

`OutgoingHosts` is checked once when built and matches a host as written in a URL. Its
`"@private"` pattern is the default rule of the whole package: the hosts that are plainly the
user's own, so that an app that calls an LLM provider or a payment API sends them no id until
a rule says so.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TypeAlias

__all__ = ["PRIVATE", "PRIVATE_NAME_SUFFIXES", "PRIVATE_NETWORKS", "OutgoingHosts"]

PRIVATE = "@private"
"""The pattern for the hosts plainly one's own; see `PRIVATE_NETWORKS` and
`PRIVATE_NAME_SUFFIXES`, plus every single-label name."""

_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

PRIVATE_NETWORKS: tuple[_Network, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",  # loopback (RFC 1122)
        "10.0.0.0/8",  # private (RFC 1918)
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local (RFC 3927)
        "::1/128",  # loopback (RFC 4291)
        "fc00::/7",  # unique local (RFC 4193)
        "fe80::/10",  # link-local (RFC 4291)
    )
)
"""Addresses no one outside the user's own networks can hold."""

PRIVATE_NAME_SUFFIXES = (".internal", ".local", ".localhost", ".home.arpa")
"""Names that never resolve on the public internet: `.internal` (ICANN, 2024), `.local`
(RFC 6762, and so Kubernetes' `.svc.cluster.local`), `.localhost` (RFC 6761), `.home.arpa`
(RFC 8375)."""

# A DNS label as hosts use them (underscores included: container and service names have them).
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_MAX_NAME_LENGTH = 253


class OutgoingHosts:
    """An allow-list of host patterns: the hosts that may receive the session header.

    A pattern is one of:

    - a host name, `"api.mycorp.com"`: that host only;
    - `"*.internal"`: every host under `internal` (`a.internal`, `a.b.internal`), but not
      `internal` itself (list it too if it is a host);
    - an IPv4 or IPv6 address, `"127.0.0.1"`, `"::1"` or `"[::1]"`;
    - a network, `"10.0.0.0/8"`, `"fd00::/8"`;
    - `"@private"`: the hosts that are plainly your own, the default rule: loopback, private
      and link-local addresses, single-label names (`orders`, `redis`: Docker Compose and
      Kubernetes services), and names under `.internal`, `.local` (so `.svc.cluster.local`),
      `.localhost` and `.home.arpa`;
    - `"*"`: every host.

    Names match in any case and with or without a trailing dot; addresses match in any notation
    (`"::1"` matches `0:0:0:0:0:0:0:1`, an IPv4-mapped IPv6 address matches its IPv4 one).
    Patterns name hosts only: a scheme, port, path or user is refused, since the session goes
    to every port of a host you trust. Write internationalized names in their ASCII form
    (`"xn--..."`). An empty list allows no host.

    Example:
        >>> OutgoingHosts(["@private", "api.mycorp.com"]).allows("orders.internal")
        True

    Raises:
        ValueError: A pattern is not one of the forms above; the message names it.
        TypeError: `patterns` is a single string, or holds something other than strings.
    """

    __slots__ = ("_every", "_private", "_names", "_networks", "_patterns", "_suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        if isinstance(patterns, str | bytes):
            raise TypeError(
                f"Expected a list of host patterns, got the string {patterns!r}: "
                f"write [{patterns!r}]."
            )
        self._patterns = tuple(patterns)
        names: set[str] = set()
        suffixes: set[str] = set()
        networks: set[_Network] = set()
        for pattern in self._patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"Expected host patterns as strings, got {pattern!r}.")
            if pattern in ("*", PRIVATE):
                continue
            if pattern.startswith("*."):
                suffixes.add("." + _parse_name(pattern[2:], pattern, wildcard=True))
            elif "/" in pattern:
                networks.add(_parse_network(pattern))
            else:
                names.add(_parse_host(pattern))
        self._every = "*" in self._patterns
        self._private = PRIVATE in self._patterns
        if self._private:
            suffixes.update(PRIVATE_NAME_SUFFIXES)
            networks.update(PRIVATE_NETWORKS)
        self._names = frozenset(names)
        self._suffixes = tuple(sorted(suffixes))
        self._networks = frozenset(networks)

    def allows(self, host: str) -> bool:
        """Whether `host` (as in a URL, any case, IPv6 with or without brackets) may get the id."""
        if self._every:
            return True
        name = _normal_host(host)
        if isinstance(name, str):
            return (
                name in self._names
                or name.endswith(self._suffixes)
                or (self._private and _is_single_label(name))
            )
        return name.compressed in self._names or any(name in net for net in self._networks)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns as given."""
        return self._patterns

    def __iter__(self) -> Iterator[str]:
        return iter(self._patterns)

    def _key(self) -> tuple[object, ...]:
        return (self._every, self._private, self._names, self._suffixes, self._networks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutgoingHosts):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"OutgoingHosts({list(self._patterns)!r})"


def _parse_host(pattern: str) -> str:
    if pattern.startswith("[") and pattern.endswith("]"):
        return _parse_address(pattern[1:-1], pattern)
    if ":" in pattern:
        return _parse_address(pattern, pattern)
    return _parse_name(pattern, pattern, wildcard=False)


def _parse_address(text: str, pattern: str) -> str:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(
            f"Expected a host name, *.domain, IP address or network, got {pattern!r}: "
            "give the host alone, without scheme, port or path."
        ) from None
    return (address.ipv4_mapped or address).compressed


def _parse_network(pattern: str) -> _Network:
    address = pattern.partition("/")[0]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(
            f"Expected a host name, *.domain, IP address or network, got {pattern!r}: "
            "give the host alone, without scheme, port or path."
        ) from None
    try:
        return ipaddress.ip_network(pattern)
    except ValueError as error:
        raise ValueError(
            f"Expected a network such as '10.0.0.0/8', got {pattern!r} ({error}): give the "
            "first address and the prefix length, without host bits."
        ) from None


def _parse_name(text: str, pattern: str, *, wildcard: bool) -> str:
    if not text.isascii():
        raise ValueError(
            f"Expected an ASCII host pattern, got {pattern!r}: "
            "write internationalized names in their xn-- form."
        )
    name = text.lower().removesuffix(".")
    labels = name.split(".")
    if len(name) > _MAX_NAME_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"Expected a host name, *.domain, IP address or network, got {pattern!r}: give "
            "the host alone, without scheme, port or path; '*' only as the whole first label."
        )
    if labels[-1].isdigit():
        # An all-digit last label is an address, never a domain: "*.0.0.1" must not match
        # 127.0.0.1, and "10.1" must not pass for a host name.
        if wildcard:
            raise ValueError(f"Expected *.domain, got {pattern!r}: addresses take no wildcard.")
        try:
            return ipaddress.IPv4Address(name).compressed
        except ValueError:
            raise ValueError(
                f"Expected a dotted IPv4 address, got {pattern!r}: write all four numbers."
            ) from None
    return name


@lru_cache(maxsize=512)
def _normal_host(host: str) -> str | _Address:
    """A host as a lower-case name without trailing dot, or as the address it is."""
    name = host.lower().removesuffix(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_single_label(name: str) -> bool:
    """A name without dots (`orders`, `localhost`) that no resolver reads as an address.

    `inet_aton` reads `2130706433` and `0x7f000001` as IPv4 addresses, so an all-number label
    could name any public host.
    """
    if "." in name or not _LABEL.fullmatch(name):
        return False
    try:
        socket.inet_aton(name)
    except OSError:
        return True
    return False
