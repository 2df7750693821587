"""The process-wide outgoing rules: the hosts and the kinds of carrier the session id may reach.

Set in code (`set_outgoing_hosts`, `set_outgoing_carriers`) or by `OPS_SESSION_OUTGOING_HOSTS` and
`OPS_SESSION_OUTGOING_CARRIERS`; checked where they are set, so that setup code fails early.
`_outgoing.may_carry_session` applies them. Also here: `say_once`, the one way the outgoing side
logs a refusal or a bad setting without repeating it per request, and the startup warning when
a client hook's `hosts=` is narrower than what the `ops_session` propagator follows. Stdlib only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ._header import session_header_name
from ._hosts import PRIVATE, OutgoingHosts
from ._variables import Variable

__all__ = [
    "DEFAULT_CARRIERS",
    "DEFAULT_HOSTS",
    "EVERY_KIND",
    "OUTGOING_CARRIERS_ENV",
    "OUTGOING_HOSTS_ENV",
    "client_rule",
    "note_propagator",
    "outgoing_carriers",
    "outgoing_hosts",
    "say_once",
    "set_outgoing_carriers",
    "set_outgoing_hosts",
]

logger = logging.getLogger("ops_session")

OUTGOING_HOSTS_ENV = "OPS_SESSION_OUTGOING_HOSTS"
"""Comma-separated host patterns for the whole process, read when no code called
`set_outgoing_hosts()`. Unset or blank: `@private`."""

OUTGOING_CARRIERS_ENV = "OPS_SESSION_OUTGOING_CARRIERS"
"""Comma-separated kinds of carrier that may take the id without showing a host, read when no
code called `set_outgoing_carriers()`; `*` for every kind, `none` for none. Unset or blank:
`DEFAULT_CARRIERS`."""

DEFAULT_HOSTS = OutgoingHosts([PRIVATE])
"""The process rule when none is set: the hosts plainly the user's own."""

DEFAULT_CARRIERS = frozenset({"arq", "celery", "kafka", "rabbitmq", "ray", "rq", "temporal"})
"""The hostless carriers that take the id when no rule is set: job queues, brokers and workers,
whose consumers are the user's own. gRPC metadata, MCP `_meta` and HTTP headers without a host
can reach third parties (Google's APIs speak gRPC), so they need a rule."""

_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
EVERY_KIND = "*"
"""In a list of carrier kinds: every kind."""

_configured_hosts: OutgoingHosts | None = None
_configured_carriers: frozenset[str] | None = None

# What the log already said, so that a refusal or a bad variable is said once, not per request.
_said: set[object] = set()
_MAX_SAID = 256
# The rules client hooks were given (`hosts=`), and whether a propagator exists: when both do
# and differ, the propagator sends where the hook would not, and startup says so (issue 27).
_client_rules: dict[OutgoingHosts, None] = {}  # in the order the hooks were built
_propagator_exists = False


def set_outgoing_hosts(hosts: Iterable[str] | None) -> None:
    """Set the hosts that the session id may be sent to, for the whole process.

    It governs the `ops_session.httpx`, `ops_session.httpx2`, `ops_session.requests` and
    `ops_session.aiohttp` hooks built without their own `hosts=` (including hooks built before
    this call), the `ops_session` propagator, `inject_session(headers, host=...)`, and every
    other integration that knows where its carrier goes. It wins over the
    `OPS_SESSION_OUTGOING_HOSTS` environment variable; `None` goes back to that variable, or,
    when it is unset, to `["@private"]`: the hosts plainly your own.

    Args:
        hosts: Host patterns, as `OutgoingHosts` takes them, or `None`.

    Raises:
        ValueError: A pattern is invalid; the message names it.

    Example:
        set_outgoing_hosts(["@private", "api.mycorp.com"])
    """
    global _configured_hosts
    _configured_hosts = None if hosts is None else OutgoingHosts(hosts)
    _check_client_rules()


def outgoing_hosts() -> OutgoingHosts:
    """The process-wide host rule: `set_outgoing_hosts()`'s, else the variable's, else private.

    Raises:
        ValueError: `OPS_SESSION_OUTGOING_HOSTS` holds an invalid pattern; the message names both.
    """
    if _configured_hosts is not None:
        return _configured_hosts
    return _hosts_from_env.get()


def set_outgoing_carriers(kinds: Iterable[str] | None) -> None:
    """Set the kinds of carrier that take the session id without showing a host, process-wide.

    A carrier that shows no host, such as Kafka record headers or gRPC metadata handed to the
    `ops_session` propagator, gets the id only when its kind is listed. It wins over the
    `OPS_SESSION_OUTGOING_CARRIERS` environment variable; `None` goes back to that variable, or,
    when it is unset, to the job queues and workers (`arq`, `celery`, `kafka`, `rabbitmq`,
    `ray`, `rq`, `temporal`). `["*"]` allows every kind, `[]` none.

    Args:
        kinds: Lower-case kind names (`"celery"`, `"grpc"`, `"mcp"`, ...), or `None`.

    Raises:
        ValueError: A kind is not a lower-case name; the message names it.
        TypeError: `kinds` is a single string.

    Example:
        set_outgoing_carriers(["celery", "kafka", "grpc"])
    """
    global _configured_carriers
    _configured_carriers = None if kinds is None else _parse_kinds(kinds)


def outgoing_carriers() -> frozenset[str]:
    """The kinds that may carry the id without a host; `"*"` in it stands for every kind.

    Raises:
        ValueError: `OPS_SESSION_OUTGOING_CARRIERS` holds an invalid kind; the message names both.
    """
    if _configured_carriers is not None:
        return _configured_carriers
    return _carriers_from_env.get()


def client_rule(hosts: Iterable[str] | None) -> OutgoingHosts | None:
    """A client hook's own rule from its `hosts=` argument; `None` means the process-wide one.

    Checks the variables now when the hook will follow them, so a bad value stops the app where
    the client is built rather than at its first request.
    """
    session_header_name()
    if hosts is None:
        outgoing_hosts()
        return None
    rule = OutgoingHosts(hosts)
    if len(_client_rules) < _MAX_SAID:
        _client_rules.setdefault(rule)
    _check_client_rules()
    return rule


def note_propagator() -> None:
    """Record that an `ops_session` propagator exists (its constructor calls this)."""
    global _propagator_exists
    _propagator_exists = True
    _check_client_rules()


def _check_client_rules() -> None:
    """Say once when a hook's `hosts=` is narrower than what the propagator follows."""
    if not _propagator_exists or not _client_rules:
        return
    try:
        process = outgoing_hosts()
    except ValueError:
        return  # said where it is used
    for rule in _client_rules:
        if rule != process:
            say_once(
                "client-rule",
                logging.WARNING,
                "A client hook limits the session id to %s, but the ops_session propagator "
                "follows the process rule %s, and OpenTelemetry's client instrumentations call "
                "it for every client, that one included: set %s to the same hosts, or leave "
                "ops_session out of OTEL_PROPAGATORS.",
                list(rule.patterns),
                list(process.patterns),
                OUTGOING_HOSTS_ENV,
            )
            return


def say_once(key: object, level: int, message: str, *args: object) -> None:
    """Log `message` the first time `key` is seen, at DEBUG afterwards (bounded)."""
    if key in _said:
        logger.debug(message, *args)
        return
    if len(_said) < _MAX_SAID:
        _said.add(key)
    logger.log(level, message, *args)


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _hosts_variable(raw: str) -> OutgoingHosts:
    patterns = _items(raw)
    return OutgoingHosts(patterns) if patterns else DEFAULT_HOSTS


def _carriers_variable(raw: str) -> frozenset[str]:
    kinds = _items(raw)
    if not kinds:
        return DEFAULT_CARRIERS
    return frozenset() if kinds == ["none"] else _parse_kinds(kinds)


def _parse_kinds(kinds: Iterable[str]) -> frozenset[str]:
    if isinstance(kinds, str | bytes):
        raise TypeError(
            f"Expected a list of carrier kinds, got the string {kinds!r}: write [{kinds!r}]."
        )
    parsed = frozenset(kinds)
    for kind in parsed:
        if kind != EVERY_KIND and (not isinstance(kind, str) or not _KIND.fullmatch(kind)):
            raise ValueError(
                f"Expected carrier kinds such as 'celery' or 'grpc' (lower case), got {kind!r}."
            )
    return parsed


_hosts_from_env = Variable(OUTGOING_HOSTS_ENV, DEFAULT_HOSTS, _hosts_variable)
_carriers_from_env = Variable(OUTGOING_CARRIERS_ENV, DEFAULT_CARRIERS, _carriers_variable)
