"""ASGI faults under uvicorn on 127.0.0.1: after each one the next request sees no trace of it.

In-process fault cases, where the middleware runs in the test's own task: test_asgi.py. (WSGI
faults: test_wsgi.py.)
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from tools.loopback import HOST, free_port, running, uvicorn_command
from websockets.sync.client import connect as websocket_connect

from ops_session import SESSION_HEADER_NAME


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
