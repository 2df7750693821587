"""Where the session id may go: the one rule every outgoing carrier asks. Stdlib only.

Session ids often embed user or conversation ids, so they go to the user's own services only,
unless the user says otherwise. Every integration that puts the id into a carrier (an HTTP
request, a queue message, RPC metadata, MCP `_meta`, a job payload) asks one function first:

    may_carry_session(carrier, host, hosts=None) -> bool

- A carrier bound for a known `host` (an HTTP request, a gRPC channel's target, an MCP server's
  URL) is judged by host: the client's own `hosts` rule when it has one, else the process rule,
  `set_outgoing_hosts()` or `OPS_SESSION_OUTGOING_HOSTS`, whose default, `"@private"`, is the
  hosts plainly the user's own (see `OutgoingHosts`).
- A carrier that shows no host (Kafka record headers, gRPC metadata or Celery headers as
  OpenTelemetry's instrumentations hand them to the propagator, Ray task dicts, MCP over stdio)
  is judged by its kind: `set_outgoing_carriers()` or `OPS_SESSION_OUTGOING_CARRIERS` list the
  kinds that may carry the id; the default, `DEFAULT_CARRIERS`, is the job queues and workers
  whose consumers are the user's own. A refusal is said once per kind in the log, never silent.

`carrier` is a lower-case kind name: `"http"` for HTTP whatever the client, the library's name
otherwise (`"celery"`, `"rq"`, `"arq"`, `"kafka"`, `"rabbitmq"`, `"grpc"`, `"mcp"`, `"ray"`,
`"temporal"`, `"baggage"`). The function never raises: a bad variable sends the id nowhere, and
the log says why, once; setup code checks the variables with `outgoing_hosts()` and
`outgoing_carriers()`, which raise. `update_session_header()` applies the rule to one hop of
an HTTP request, redirects included, and `inject_session()` is the public way to write the id.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, MutableMapping

from ._core import current_session, extract_session_id
from ._header import session_header_name
from ._hosts import PRIVATE, OutgoingHosts

__all__ = [
    "DEFAULT_CARRIERS",
    "DEFAULT_HOSTS",
    "OUTGOING_CARRIERS_ENV",
    "OUTGOING_HOSTS_ENV",
    "client_rule",
    "inject_session",
    "may_carry_session",
    "note_propagator",
    "outgoing_carriers",
    "outgoing_header_name",
    "outgoing_hosts",
    "say_once",
    "set_outgoing_carriers",
    "set_outgoing_hosts",
    "update_session_header",
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
_EVERY_KIND = "*"

_configured_hosts: OutgoingHosts | None = None
_hosts_from_env: tuple[str, OutgoingHosts] = ("", DEFAULT_HOSTS)
_configured_carriers: frozenset[str] | None = None
_carriers_from_env: tuple[str, frozenset[str]] = ("", DEFAULT_CARRIERS)

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
    global _hosts_from_env
    if _configured_hosts is not None:
        return _configured_hosts
    raw = os.environ.get(OUTGOING_HOSTS_ENV, "")
    if raw == _hosts_from_env[0]:
        return _hosts_from_env[1]
    patterns = _items(raw)
    try:
        rule = OutgoingHosts(patterns) if patterns else DEFAULT_HOSTS
    except ValueError as error:
        raise ValueError(f"{OUTGOING_HOSTS_ENV}={raw!r} is invalid: {error}") from None
    _hosts_from_env = (raw, rule)
    return rule


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
    global _carriers_from_env
    if _configured_carriers is not None:
        return _configured_carriers
    raw = os.environ.get(OUTGOING_CARRIERS_ENV, "")
    if raw == _carriers_from_env[0]:
        return _carriers_from_env[1]
    kinds = _items(raw)
    try:
        if not kinds:
            allowed = DEFAULT_CARRIERS
        elif kinds == ["none"]:
            allowed = frozenset()
        else:
            allowed = _parse_kinds(kinds)
    except ValueError as error:
        raise ValueError(f"{OUTGOING_CARRIERS_ENV}={raw!r} is invalid: {error}") from None
    _carriers_from_env = (raw, allowed)
    return allowed


def may_carry_session(carrier: str, host: str | None, hosts: OutgoingHosts | None = None) -> bool:
    """Whether the session id may go into a carrier of kind `carrier` bound for `host`.

    The one question every integration asks before it writes the id (see the module's
    docstring). Never raises: an invalid `OPS_SESSION_*` variable refuses, and says so once.

    Args:
        carrier: The carrier's kind, lower case: `"http"`, `"celery"`, `"grpc"`, `"mcp"`, ...
        host: Where the carrier goes, as in a URL (`"orders.internal"`, `"10.0.0.7"`,
            `"[::1]"`), or `None` when it shows no host.
        hosts: The client's own rule (its `hosts=`), judging `host` instead of the process rule.
    """
    try:
        if host is not None:
            return (outgoing_hosts() if hosts is None else hosts).allows(host)
        allowed = outgoing_carriers()
    except ValueError as error:
        say_once(
            ("invalid", str(error)),
            logging.WARNING,
            "ops-session sends the session id nowhere until this is fixed: %s",
            error,
        )
        return False
    if carrier in allowed or _EVERY_KIND in allowed:
        return True
    if carrier == "http":
        say_once(
            ("carrier", carrier),
            logging.DEBUG,
            "HTTP headers that show no host get no session id from the ops_session propagator: "
            "hook the client (send_session, SessionTraceConfig), which sees the URL.",
        )
        return False
    say_once(
        ("carrier", carrier),
        logging.WARNING,
        "ops-session did not put the session id into a %r carrier, which shows no host: add %r "
        "to %s (or set_outgoing_carriers) to send it there.",
        carrier,
        carrier,
        OUTGOING_CARRIERS_ENV,
    )
    return False


def outgoing_header_name() -> str | None:
    """The session header name for a request in flight, or `None` (said once) when it is invalid."""
    try:
        return session_header_name()
    except ValueError as error:
        say_once(
            ("invalid", str(error)),
            logging.WARNING,
            "ops-session sends and reads no session id until this is fixed: %s",
            error,
        )
        return None


def update_session_header(
    headers: MutableMapping[str, str], host: str, hosts: OutgoingHosts | None
) -> None:
    """Make one hop of an HTTP request carry the session header exactly when `host` may get it.

    A header holding the current session's id is ours, however it got there (this function on
    an earlier hop before a redirect, `inject_session`, a forwarded incoming header): it is
    removed from a hop to a host the rule refuses. A header holding another id was set by the
    caller on purpose, and stands.

    Args:
        headers: The hop's headers, a case-insensitive mapping, changed in place.
        host: The hop's host, as in its URL.
        hosts: The client's own rule, or `None` for the process-wide one.
    """
    current = current_session()
    if current is None:
        return
    name = outgoing_header_name()
    if name is None:
        return
    present = headers.get(name)
    if present is None:
        if may_carry_session("http", host, hosts):
            headers[name] = current.id
    elif present == current.id and not may_carry_session("http", host, hosts):
        del headers[name]


def inject_session(
    headers: MutableMapping[str, str], *, host: str | None = None
) -> MutableMapping[str, str]:
    """Write the current session's id into outgoing headers.

    Without `host`, you chose the carrier (a job payload, a message you send to your own
    service), and the id is written. With `host`, the process rule (`set_outgoing_hosts`,
    `OPS_SESSION_OUTGOING_HOSTS`, default your own hosts) decides: call it again with each
    redirect's host, and a hop to a host outside the rule loses the id written for an earlier
    one. Outside a session the headers are left as they are. A session header holding another
    id, in any case, is kept, so a caller can still forward a different id on purpose.

    Args:
        headers: The outgoing headers, changed in place.
        host: The host the headers go to, as in a URL, or `None`.

    Returns:
        The same `headers`, for chaining.

    Raises:
        ValueError: `OPS_SESSION_HEADER_NAME` holds no header name.

    Example:
        >>> with session(id="chat-42"):
        ...     inject_session({})
        {'Mirascope-Session-Id': 'chat-42'}
    """
    current = current_session()
    if current is None:
        return headers
    name = session_header_name()
    if host is not None:
        present = extract_session_id(headers, header_name=name)
        if present is None and may_carry_session("http", host):
            headers[name] = current.id
        elif present == current.id and not may_carry_session("http", host):
            for key in [key for key in headers if key.lower() == name.lower()]:
                del headers[key]
    elif extract_session_id(headers, header_name=name) is None:
        headers[name] = current.id
    return headers


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


def _parse_kinds(kinds: Iterable[str]) -> frozenset[str]:
    if isinstance(kinds, str | bytes):
        raise TypeError(
            f"Expected a list of carrier kinds, got the string {kinds!r}: write [{kinds!r}]."
        )
    parsed = frozenset(kinds)
    for kind in parsed:
        if kind != _EVERY_KIND and (not isinstance(kind, str) or not _KIND.fullmatch(kind)):
            raise ValueError(
                f"Expected carrier kinds such as 'celery' or 'grpc' (lower case), got {kind!r}."
            )
    return parsed
