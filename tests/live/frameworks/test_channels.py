"""Django Channels: every consumer runs in the session of its websocket handshake.

Async and sync consumers alike, and a group message that one connection sends runs, in each
receiving consumer, in that consumer's own session. Under daphne too, which drops the headers
of `websocket.accept`, so the handshake response there carries no session header.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest
from tools.loopback import HOST, free_port, running
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as websocket_connect

from ops_session import SESSION_HEADER_NAME

from .conftest import Served, for_frameworks
from .harness import APPS, FRAMEWORKS

pytestmark = pytest.mark.servers

CHANNELS = next(framework for framework in FRAMEWORKS if framework.name == "django-channels")
on_uvicorn = for_frameworks([CHANNELS])


def connect(url: str, session_id: str) -> ClientConnection:
    return websocket_connect(url, additional_headers={SESSION_HEADER_NAME: session_id})


@on_uvicorn
def test_sync_consumer_runs_in_the_handshake_session(served: Served) -> None:
    with connect(served.websocket_url("/ws-sync"), "sync-1") as websocket:
        assert websocket.response is not None
        assert websocket.response.headers.get_all(SESSION_HEADER_NAME) == ["sync-1"]
        assert websocket.recv(timeout=10) == "sync-1"
        websocket.send("ping")
        assert websocket.recv(timeout=10) == "ping:sync-1"


@on_uvicorn
def test_group_message_runs_in_each_receivers_own_session(served: Served) -> None:
    url = served.websocket_url("/room")
    with connect(url, "room-a") as first, connect(url, "room-b") as second:
        assert (first.recv(timeout=10), second.recv(timeout=10)) == ("room-a", "room-b")
        first.send("hello")
        assert first.recv(timeout=10) == "hello:room-a"
        assert second.recv(timeout=10) == "hello:room-b"
        second.send("back")
        assert first.recv(timeout=10) == "back:room-a"
        assert second.recv(timeout=10) == "back:room-b"


@pytest.fixture(scope="module")
def daphne() -> Iterator[int]:
    port = free_port()
    command = [
        sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port),
        f"{APPS}.channels_project.asgi:application",
    ]  # fmt: skip
    env = {"DJANGO_SETTINGS_MODULE": f"{APPS}.channels_project.settings"}
    with running(command, port, env=env):
        yield port


def test_daphne_runs_consumers_in_the_handshake_session(daphne: int) -> None:
    with connect(f"ws://{HOST}:{daphne}/ws", "daphne-1") as websocket:
        assert websocket.response is not None
        # Daphne sends no headers of `websocket.accept` (daphne/ws_protocol.py serverAccept).
        assert SESSION_HEADER_NAME not in websocket.response.headers
        assert websocket.recv(timeout=10) == "daphne-1"
        websocket.send("ping")
        assert websocket.recv(timeout=10) == "ping:daphne-1"
    response = httpx.get(f"http://{HOST}:{daphne}/session", headers={SESSION_HEADER_NAME: "d-2"})
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["d-2"]
    assert response.json() == {"id": "d-2", "request_header": "d-2"}
