"""The event hooks that `ops_session.httpx` and `ops_session.httpx2` register: one for both.

httpx2 is a fork of httpx with the same request and client API, so the hooks are typed against
that shape (`RequestLike`, `ClientLike`) and import neither library: each public module imports
only its own. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol

from ._outgoing import update_session_header
from ._rules import client_rule

__all__ = [
    "AsyncSessionHeaderHook",
    "ClientLike",
    "HostsHook",
    "RequestLike",
    "SessionHeaderHook",
    "register_hook",
]


class _URLLike(Protocol):
    @property
    def raw_host(self) -> bytes: ...


class RequestLike(Protocol):
    """What the hooks use of an `httpx.Request` or an `httpx2.Request`."""

    @property
    def headers(self) -> MutableMapping[str, str]: ...

    @property
    def url(self) -> _URLLike: ...


class ClientLike(Protocol):
    """What `register_hook` uses of an httpx or httpx2 client."""

    @property
    def event_hooks(self) -> dict[str, list[Any]]: ...

    @event_hooks.setter
    def event_hooks(self, event_hooks: dict[str, list[Any]]) -> None: ...


class HostsHook:
    """A request hook's host rule: its own `hosts`, or `None` for the process-wide one."""

    def __init__(self, *, hosts: Iterable[str] | None = None) -> None:
        self.hosts = client_rule(hosts)

    def _apply(self, request: RequestLike) -> None:
        # httpx copies a request's headers to its redirect and runs the hooks again for it.
        update_session_header(request.headers, request.url.raw_host.decode("ascii"), self.hosts)


class SessionHeaderHook(HostsHook):
    """A `request` event hook for `httpx.Client` and `httpx2.Client` that adds the session header.

    httpx runs request hooks for every hop, redirects included: a hop to a host that `hosts`
    does not allow gets no session header, and loses one holding the current session's id
    (this hook's, or one written by `inject_session`). A session header holding another id is
    yours, and is sent as you set it. Outside a session nothing changes.

    Args:
        hosts: Host patterns (see `ops_session.OutgoingHosts`); `None` follows the process-wide
            rule (`ops_session.set_outgoing_hosts`, default `["@private"]`: your own hosts).

    Example:
        client = httpx.Client(event_hooks={"request": [SessionHeaderHook(hosts=["*.internal"])]})
    """

    def __call__(self, request: RequestLike) -> None:
        self._apply(request)


class AsyncSessionHeaderHook(HostsHook):
    """The same event hook for `httpx.AsyncClient` and `httpx2.AsyncClient`, which await it."""

    async def __call__(self, request: RequestLike) -> None:
        self._apply(request)


def register_hook(
    client: ClientLike,
    hosts: Iterable[str] | None,
    *,
    sync_class: type[Any],
    async_class: type[Any],
    library: str,
    twin: str,
) -> None:
    """Put the hook that fits `client` among its request hooks, in place of one put there before.

    Raises:
        TypeError: `client` is neither `sync_class` nor `async_class`; the message names the
            `twin` module, which serves the other library.
    """
    hook: HostsHook
    if isinstance(client, async_class):
        hook = AsyncSessionHeaderHook(hosts=hosts)
    elif isinstance(client, sync_class):
        hook = SessionHeaderHook(hosts=hosts)
    else:
        raise TypeError(
            f"Expected an {library}.Client or {library}.AsyncClient, got "
            f"{type(client).__qualname__} from {type(client).__module__!r}: for {twin} clients "
            f"use ops_session.{twin}.send_session."
        )
    others = [
        existing
        for existing in client.event_hooks["request"]
        if not isinstance(existing, HostsHook)
    ]
    client.event_hooks = {**client.event_hooks, "request": [*others, hook]}
