"""Send the current session's id with the requests of an httpx client.  [extra: httpx]

For `httpx2` clients use `ops_session.httpx2`, its twin: each module imports only its own library.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

try:
    import httpx
except ImportError as error:
    raise ImportError("ops_session.httpx needs httpx: install 'ops-session[httpx]'.") from error

from ._httpx_hooks import AsyncSessionHeaderHook, SessionHeaderHook, register_hook

__all__ = [
    "AsyncSessionHeaderHook",
    "SessionHeaderHook",
    "add_session_header",
    "add_session_header_async",
    "send_session",
]

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)

add_session_header = SessionHeaderHook()
"""The `httpx.Client` hook that follows the process-wide host rule."""

add_session_header_async = AsyncSessionHeaderHook()
"""The `httpx.AsyncClient` hook that follows the process-wide host rule."""


def send_session(client: ClientT, *, hosts: Iterable[str] | None = None) -> ClientT:
    """Register the session event hook on a client (sync or async) and return the client.

    Calling it again on the same client replaces the hook, with the new `hosts`.

    Args:
        client: An `httpx.Client` or `httpx.AsyncClient`.
        hosts: Host patterns that may receive the session id (`"*.internal"`,
            `"api.mycorp.com"`, `"10.0.0.7"`); requests to other hosts, redirects included, get
            no session header. `None` follows the process-wide rule (`set_outgoing_hosts`,
            `OPS_SESSION_OUTGOING_HOSTS`), which allows your own hosts (`"@private"`) unless set.

    Raises:
        TypeError: `client` is not an httpx client (an `httpx2` one takes
            `ops_session.httpx2.send_session`).
        ValueError: A host pattern, or `OPS_SESSION_OUTGOING_HOSTS` when it applies, is invalid.

    Example:
        client = send_session(httpx.AsyncClient(), hosts=["*.internal"])
    """
    register_hook(
        client,
        hosts,
        sync_class=httpx.Client,
        async_class=httpx.AsyncClient,
        library="httpx",
        twin="httpx2",
    )
    return client
