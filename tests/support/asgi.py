"""One ASGI driver for the tests: build a scope, call an app on it, read what it sent.

`run` awaits the app in the caller's own task, as a server does for each request, so a test can
check right after the call that the caller's session is back to what it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ops_session import current_session
from ops_session.asgi import ASGIApp, Message, Scope

HTTP_REQUEST: Message = {"type": "http.request", "body": b""}


def http_scope(*headers: tuple[bytes, bytes], **extra: Any) -> Scope:
    """A complete HTTP scope for GET /items with `headers` after `host`; `extra` overrides keys."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items",
        "raw_path": b"/items",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(extra)
    return scope


async def run(
    app: ASGIApp,
    scope: Scope,
    *,
    receive_messages: Iterable[Message] = (HTTP_REQUEST,),
    sent: list[Message] | None = None,
    fail_send: Callable[[Message], bool] | None = None,
    timeout: float = 1,
) -> list[Message]:
    """Await `app(scope, receive, send)` in this task and return the messages it sent.

    `receive()` returns `receive_messages` in order, then `http.disconnect`. Sent messages are
    appended to `sent` (a new list by default) as they go, so a caller can pass its own to see
    what went out before the app raised. `send` raises `OSError` for a message `fail_send`
    accepts, as a server's does once the client has gone. The app is cancelled after `timeout`
    seconds (`TimeoutError`). Whatever happens, the caller's session must be as it was before.
    """
    pending = list(receive_messages)
    messages: list[Message] = [] if sent is None else sent

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if fail_send is not None and fail_send(message):
            raise OSError("the client went away")
        messages.append(message)

    before = current_session()
    try:
        async with asyncio.timeout(timeout):
            await app(scope, receive, send)
    finally:
        assert current_session() is before, "the app left another session current"
    return messages


def session_headers(message: Message, name: bytes = b"mirascope-session-id") -> list[bytes]:
    """The values of a message's headers called `name` (lower-case), whatever their case."""
    return [value for key, value in message.get("headers", ()) if key.lower() == name]
