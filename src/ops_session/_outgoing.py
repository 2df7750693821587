"""Which hosts outgoing requests may send the session id to: the allow-list every client hook uses.

Session ids often embed user or conversation ids, so an app that calls third-party APIs should
send them only to its own services. `OutgoingHosts` is the rule (host patterns, checked once when
built); `set_outgoing_hosts()` and the `OPS_SESSION_OUTGOING_HOSTS` environment variable set it for
the whole process; `update_session_header()` applies it to one hop of one request, redirects
included. Stdlib only.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Iterator, MutableMapping
from functools import lru_cache

from ._core import SESSION_HEADER_NAME, current_session

__all__ = [
    "EVERY_HOST",
    "OUTGOING_HOSTS_ENV",
    "OutgoingHosts",
    "client_rule",
    "outgoing_hosts",
    "set_outgoing_hosts",
    "update_session_header",
]

OUTGOING_HOSTS_ENV = "OPS_SESSION_OUTGOING_HOSTS"
"""Comma-separated host patterns for the whole process, read when no code called
`set_outgoing_hosts()`. Unset or blank: every host."""

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
    - `"*"`: every host.

    Names match in any case and with or without a trailing dot; addresses match in any notation
    (`"::1"` matches `0:0:0:0:0:0:0:1`). Patterns name hosts only: a scheme, port, path or user
    is refused, since the session goes to every port of a host you trust. Write
    internationalized names in their ASCII form (`"xn--..."`). An empty list allows no host.

    Example:
        >>> OutgoingHosts(["*.internal", "api.mycorp.com"]).allows("orders.internal")
        True

    Raises:
        ValueError: A pattern is not one of the forms above; the message names it.
        TypeError: `patterns` is a single string, or holds something other than strings.
    """

    __slots__ = ("_every", "_names", "_patterns", "_suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        if isinstance(patterns, str | bytes):
            raise TypeError(
                f"Expected a list of host patterns, got the string {patterns!r}: "
                f"write [{patterns!r}]."
            )
        self._patterns = tuple(patterns)
        names: set[str] = set()
        suffixes: set[str] = set()
        for pattern in self._patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"Expected host patterns as strings, got {pattern!r}.")
            if pattern == "*":
                continue
            if pattern.startswith("*."):
                suffixes.add("." + _parse_name(pattern[2:], pattern, wildcard=True))
            else:
                names.add(_parse_host(pattern))
        self._every = "*" in self._patterns
        self._names = frozenset(names)
        self._suffixes = tuple(sorted(suffixes))

    def allows(self, host: str) -> bool:
        """Whether `host` (as in a URL, any case, IPv6 with or without brackets) may get the id."""
        if self._every:
            return True
        name = _normal_host(host)
        return name in self._names or name.endswith(self._suffixes)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns as given."""
        return self._patterns

    def __iter__(self) -> Iterator[str]:
        return iter(self._patterns)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutgoingHosts):
            return NotImplemented
        return (self._every, self._names, self._suffixes) == (
            other._every,
            other._names,
            other._suffixes,
        )

    def __hash__(self) -> int:
        return hash((self._every, self._names, self._suffixes))

    def __repr__(self) -> str:
        return f"OutgoingHosts({list(self._patterns)!r})"


EVERY_HOST = OutgoingHosts(["*"])

_configured: OutgoingHosts | None = None
_from_env: tuple[str, OutgoingHosts] = ("", EVERY_HOST)


def set_outgoing_hosts(hosts: Iterable[str] | None) -> None:
    """Set the hosts that every hooked client may send the session id to, for the whole process.

    It governs `ops_session.httpx`, `ops_session.httpx2`, `ops_session.requests` and
    `ops_session.aiohttp` hooks built without their own `hosts=`, including hooks built before
    this call. It wins over the `OPS_SESSION_OUTGOING_HOSTS` environment variable; `None` goes
    back to that variable, or, when it is unset, to every host.

    It also governs the `ops_session` propagator, which sends the id only where the request's
    headers name an allowed `Host` (httpx's do; requests' and aiohttp's do not, so it sends
    nothing there and their hooks send the header).

    Args:
        hosts: Host patterns, as `OutgoingHosts` takes them, or `None`.

    Raises:
        ValueError: A pattern is invalid; the message names it.

    Example:
        set_outgoing_hosts(["*.internal", "api.mycorp.com"])
    """
    global _configured
    _configured = None if hosts is None else OutgoingHosts(hosts)


def outgoing_hosts() -> OutgoingHosts:
    """The process-wide rule: `set_outgoing_hosts()`'s, else the environment variable's, else all.

    Raises:
        ValueError: `OPS_SESSION_OUTGOING_HOSTS` holds an invalid pattern; the message names both.
    """
    global _from_env
    if _configured is not None:
        return _configured
    raw = os.environ.get(OUTGOING_HOSTS_ENV, "")
    if raw == _from_env[0]:
        return _from_env[1]
    if not raw.strip():
        rule = EVERY_HOST
    else:
        patterns = [pattern.strip() for pattern in raw.split(",") if pattern.strip()]
        try:
            rule = OutgoingHosts(patterns)
        except ValueError as error:
            raise ValueError(f"{OUTGOING_HOSTS_ENV}={raw!r} is invalid: {error}") from None
    _from_env = (raw, rule)
    return rule


def client_rule(hosts: Iterable[str] | None) -> OutgoingHosts | None:
    """A client hook's own rule from its `hosts=` argument; `None` means the process-wide one.

    Checks the environment variable now when the hook will follow it, so a bad value stops the
    app where the client is built rather than at its first request.
    """
    if hosts is None:
        outgoing_hosts()
        return None
    return OutgoingHosts(hosts)


def update_session_header(
    headers: MutableMapping[str, str],
    host: str,
    hosts: OutgoingHosts | None,
    sent: str | None,
) -> str | None:
    """Make one hop of an outgoing request carry the session header exactly when `host` may get it.

    Args:
        headers: The hop's headers, a case-insensitive mapping, changed in place.
        host: The hop's host, as in its URL.
        hosts: The client's own rule, or `None` for the process-wide one.
        sent: What an earlier hop of the same request (before a redirect) got from this function.
            A header with that value is ours, and is removed before `host` is judged; any other
            session header was set by the caller and is left as it is.

    Returns:
        The id written now (remember it for the next hop), or `None`.
    """
    if sent is not None and headers.get(SESSION_HEADER_NAME) == sent:
        del headers[SESSION_HEADER_NAME]
    current = current_session()
    if current is None or SESSION_HEADER_NAME in headers:
        return None
    if not (outgoing_hosts() if hosts is None else hosts).allows(host):
        return None
    headers[SESSION_HEADER_NAME] = current.id
    return current.id


def _parse_host(pattern: str) -> str:
    if pattern.startswith("[") and pattern.endswith("]"):
        return _parse_address(pattern[1:-1], pattern)
    if ":" in pattern:
        return _parse_address(pattern, pattern)
    return _parse_name(pattern, pattern, wildcard=False)


def _parse_address(text: str, pattern: str) -> str:
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        raise ValueError(
            f"Expected a host name, *.domain or IP address, got {pattern!r}: "
            "give the host alone, without scheme, port or path."
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
            f"Expected a host name, *.domain or IP address, got {pattern!r}: give the host "
            "alone, without scheme, port or path; '*' only as the whole first label."
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
def _normal_host(host: str) -> str:
    name = host.lower().removesuffix(".")
    if ":" in name:
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        try:
            return ipaddress.IPv6Address(name).compressed
        except ValueError:
            return name
    return name
