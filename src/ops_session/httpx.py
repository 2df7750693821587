"""Send the current session's id with every request of an httpx client.  [extra: httpx]"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

try:
    import httpx
except ImportError as error:
    raise ImportError("ops_session.httpx needs httpx: install 'ops-session[httpx]'.") from error

from ._core import inject_session

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)


def add_session_header(request: httpx.Request) -> None:
    """An httpx `request` event hook for `httpx.Client`: adds the session header.

    Outside a session, and when the request already carries the header, nothing changes.
    """
    inject_session(request.headers)


async def add_session_header_async(request: httpx.Request) -> None:
    """The same event hook for `httpx.AsyncClient`, which awaits its hooks."""
    add_session_header(request)


def send_session(client: ClientT) -> ClientT:
    """Register the session event hook on a client (sync or async) and return the client.

    Example:
        client = send_session(httpx.AsyncClient(base_url="http://orders"))
    """
    request_hooks: list[Callable[..., Any]] = client.event_hooks["request"]
    hook: Callable[..., Any] = (
        add_session_header_async if isinstance(client, httpx.AsyncClient) else add_session_header
    )
    if hook not in request_hooks:
        client.event_hooks = {**client.event_hooks, "request": [*request_hooks, hook]}
    return client
