"""ASGI faults: after each one the session is restored, and the next request sees no trace of it.

In-process cases drive the middleware in the test's own task, so what "restored" means can be
checked directly. The real-server cases use uvicorn on 127.0.0.1. (WSGI faults: test_wsgi.py.)
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tools.loopback import HOST, free_port, running, uvicorn_command
from websockets.sync.client import connect as websocket_connect

from ops_session import SESSION_HEADER_NAME, SessionMiddleware, current_session, session
from ops_session.asgi import Message, Receive, Scope, Send

SCOPE: Scope = {"type": "http", "headers": [(b"mirascope-session-id", b"fault-1")]}


class Script:
    """A raw ASGI app that records the session it ran in, then misbehaves as told."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.seen: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        current = current_session()
        self.seen.append(current.id if current else None)
        if self.fault == "never-responds":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        if self.fault == "hangs":
            await asyncio.Event().wait()
        if self.fault == "raises-after-start":
            raise RuntimeError("after the response started")
        await send({"type": "http.response.body", "body": b"second"})


async def call(app: Any, sent: list[Message]) -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        if message.get("body") == b"second":
            raise OSError("the client went away")  # what a server's send does after a disconnect
        sent.append(message)

    await app(dict(SCOPE), receive, send)


async def run_fault(fault: str) -> tuple[Script, list[Message], BaseException | None]:
    app = Script(fault)
    sent: list[Message] = []
    error: BaseException | None = None
    try:
        async with asyncio.timeout(0.1):
            await call(SessionMiddleware(app), sent)
    except (TimeoutError, RuntimeError, OSError) as raised:
        error = raised
    return app, sent, error


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param("hangs", TimeoutError, id="handler-task-cancelled"),
        pytest.param("raises-after-start", RuntimeError, id="raises-after-response-started"),
        pytest.param("disconnects", OSError, id="client-disconnects-mid-stream"),
        pytest.param("never-responds", None, id="never-sends-a-response"),
    ],
)
def test_session_is_restored_after_the_fault(fault: str, error: type[Exception] | None) -> None:
    async def main() -> None:
        with session(id="outer") as outer:
            app, sent, raised = await run_fault(fault)
            assert current_session() is outer
        assert current_session() is None
        assert app.seen == ["fault-1"]
        assert (type(raised) if raised else None) is error
        if sent:
            assert (b"mirascope-session-id", b"fault-1") in sent[0]["headers"]

    asyncio.run(main())


@pytest.fixture(scope="module")
def uvicorn_url() -> Iterator[str]:
    port = free_port()
    with running(uvicorn_command("tests.live.apps.asgi_app:app", port), port) as url:
        yield url


def next_request_is_clean(url: str, previous: str) -> None:
    response = httpx.get(f"{url}/session")
    generated = response.headers[SESSION_HEADER_NAME]
    assert uuid.UUID(generated).version == 4
    assert response.json()["id"] == generated != previous


@pytest.mark.servers
def test_client_disconnecting_mid_stream_under_uvicorn(uvicorn_url: str) -> None:
    port = int(uvicorn_url.rsplit(":", 1)[1])
    with socket.create_connection((HOST, port), timeout=10) as connection:
        connection.sendall(
            b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nMirascope-Session-Id: gone-1\r\n\r\n"
        )
        first = connection.recv(4096)
        assert b"mirascope-session-id: gone-1" in first.lower()
    # The socket is closed while the handler still streams; the worker carries on.
    next_request_is_clean(uvicorn_url, "gone-1")


@pytest.mark.servers
def test_websocket_closed_abruptly_under_uvicorn(uvicorn_url: str) -> None:
    ws_url = uvicorn_url.replace("http://", "ws://") + "/ws"
    with websocket_connect(ws_url, additional_headers={SESSION_HEADER_NAME: "ws-gone"}) as ws:
        assert ws.recv(timeout=10) == "ws-gone"
        ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
    next_request_is_clean(uvicorn_url, "ws-gone")
