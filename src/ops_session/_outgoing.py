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
the log says why, once; setup code checks the variables with `_rules.outgoing_hosts()` and
`outgoing_carriers()`, which raise. `update_session_header()` applies the rule to one hop of
an HTTP request, redirects included, and `inject_session()` is the public way to write the id.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping

from ._core import current_session, extract_session_id
from ._header import session_header_name
from ._hosts import OutgoingHosts
from ._rules import (
    EVERY_KIND,
    OUTGOING_CARRIERS_ENV,
    outgoing_carriers,
    outgoing_hosts,
    say_once,
)

__all__ = [
    "inject_session",
    "may_carry_session",
    "outgoing_header_name",
    "update_session_header",
]


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
    if carrier in allowed or EVERY_KIND in allowed:
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
        TypeError: A header name or value is not a `str` (decode bytes headers first).
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
