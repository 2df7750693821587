"""Send the current session's id with the requests of an httpx2 client.  [extra: httpx2]

The twin of `ops_session.httpx` for `httpx2`, the maintained fork that Starlette's test client
runs on. Each module imports only its own library, and is typed against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

try:
    import httpx2
except ImportError as error:
    raise ImportError("ops_session.httpx2 needs httpx2: install 'ops-session[httpx2]'.") from error

from ._outgoing import client_rule, update_session_header

ClientT = TypeVar("ClientT", httpx2.Client, httpx2.AsyncClient)

# Redirected requests get a copy of the first request's extensions (httpx2 `_client.py`
# `_build_redirect_request`), so the id we wrote travels with every hop of one request.
_SENT = "ops_session.sent_session_id"


class _HostsHook:
    def __init__(self, *, hosts: Iterable[str] | None = None) -> None:
        self.hosts = client_rule(hosts)

    def _apply(self, request: httpx2.Request) -> None:
        request.extensions[_SENT] = update_session_header(
            request.headers,
            request.url.raw_host.decode("ascii"),
            self.hosts,
            request.extensions.get(_SENT),
        )


class SessionHeaderHook(_HostsHook):
    """An httpx2 `request` event hook for `httpx2.Client` that adds the session header.

    httpx2 runs request hooks for every hop, redirects included: a hop to a host that `hosts`
    does not allow gets no session header, and loses the one this hook added to an earlier hop.
    A session header you set yourself is sent as you set it. Outside a session nothing changes.

    Args:
        hosts: Host patterns (see `ops_session.OutgoingHosts`); `None` follows the process-wide
            rule (`ops_session.set_outgoing_hosts`, default every host).

    Example:
        client = httpx2.Client(event_hooks={"request": [SessionHeaderHook(hosts=["*.internal"])]})
    """

    def __call__(self, request: httpx2.Request) -> None:
        self._apply(request)


class AsyncSessionHeaderHook(_HostsHook):
    """The same event hook for `httpx2.AsyncClient`, which awaits its hooks."""

    async def __call__(self, request: httpx2.Request) -> None:
        self._apply(request)


add_session_header = SessionHeaderHook()
"""The `httpx2.Client` hook that follows the process-wide host rule."""

add_session_header_async = AsyncSessionHeaderHook()
"""The `httpx2.AsyncClient` hook that follows the process-wide host rule."""


def send_session(client: ClientT, *, hosts: Iterable[str] | None = None) -> ClientT:
    """Register the session event hook on a client (sync or async) and return the client.

    Calling it again on the same client replaces the hook, with the new `hosts`.

    Args:
        client: An `httpx2.Client` or `httpx2.AsyncClient`.
        hosts: Host patterns that may receive the session id (`"*.internal"`,
            `"api.mycorp.com"`, `"10.0.0.7"`); requests to other hosts, redirects included, get
            no session header. `None` follows the process-wide rule (`set_outgoing_hosts`,
            `OPS_SESSION_OUTGOING_HOSTS`), which allows every host unless set.

    Raises:
        TypeError: `client` is not an httpx2 client (an `httpx` one takes
            `ops_session.httpx.send_session`).
        ValueError: A host pattern, or `OPS_SESSION_OUTGOING_HOSTS` when it applies, is invalid.

    Example:
        client = send_session(httpx2.AsyncClient(), hosts=["*.internal"])
    """
    hook: _HostsHook
    if isinstance(client, httpx2.AsyncClient):
        hook = AsyncSessionHeaderHook(hosts=hosts)
    elif isinstance(client, httpx2.Client):
        hook = SessionHeaderHook(hosts=hosts)
    else:
        raise TypeError(
            f"Expected an httpx2.Client or httpx2.AsyncClient, got {type(client).__qualname__} "
            f"from {type(client).__module__!r}: for httpx clients use "
            "ops_session.httpx.send_session."
        )
    others: list[Any] = [
        existing
        for existing in client.event_hooks["request"]
        if not isinstance(existing, _HostsHook)
    ]
    client.event_hooks = {**client.event_hooks, "request": [*others, hook]}
    return client
