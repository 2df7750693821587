"""The same seven checks against every framework's app, each under a real server.

A header round trip, a generated id (for a missing or invalid one), the handler reading
`current_session()`, a streamed body, a websocket where the framework has them, a 500 that
carries the header, and 100 concurrent requests that never see each other's session.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from websockets.sync.client import connect as websocket_connect

from ops_session import SESSION_HEADER_NAME

from ...support.clients import get_concurrently
from .apps.routes import LINES
from .conftest import Served, every_framework, websocket_frameworks

pytestmark = pytest.mark.servers

CONCURRENT_REQUESTS = 100


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


@every_framework
def test_header_round_trip(served: Served) -> None:
    with served.client() as client:
        response = client.get("/session", headers={SESSION_HEADER_NAME: "round-trip-1"})
    assert response.status_code == 200
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["round-trip-1"]
    assert response.json() == {"id": "round-trip-1", "request_header": "round-trip-1"}


@every_framework
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="missing"),
        pytest.param("two words", id="space"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("<script>", id="markup"),
    ],
)
def test_missing_or_invalid_id_is_generated(served: Served, value: str | None) -> None:
    headers = {} if value is None else {SESSION_HEADER_NAME: value}
    with served.client() as client:
        response = client.get("/session", headers=headers)
    (generated,) = response.headers.get_list(SESSION_HEADER_NAME)
    assert is_uuid4(generated)
    # The handler reads the generated id from current_session() and from its request headers.
    assert response.json() == {"id": generated, "request_header": generated}
    if value is not None:
        assert value not in response.text


@every_framework
def test_handler_reads_the_session_of_its_own_request(served: Served) -> None:
    with served.client() as client:
        first = client.get("/session", headers={SESSION_HEADER_NAME: "handler-1"}).json()
        second = client.get("/session", headers={SESSION_HEADER_NAME: "handler-2"}).json()
        without = client.get("/session").json()
    assert (first["id"], second["id"]) == ("handler-1", "handler-2")
    assert without["id"] not in (None, "handler-1", "handler-2")


@every_framework
def test_streamed_body_sees_the_session(served: Served) -> None:
    with served.client() as client:
        response = client.get("/stream", headers={SESSION_HEADER_NAME: "stream-1"})
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["stream-1"]
    assert response.text.split() == ["stream-1"] * LINES


@websocket_frameworks
def test_websocket_runs_in_the_session_of_its_handshake(served: Served) -> None:
    url = served.websocket_url()
    headers = {SESSION_HEADER_NAME: "ws-1"}
    with websocket_connect(url, additional_headers=headers, open_timeout=10) as websocket:
        assert websocket.response is not None
        assert websocket.response.headers.get_all(SESSION_HEADER_NAME) == ["ws-1"]
        assert websocket.recv(timeout=10) == "ws-1"
        websocket.send("ping")
        assert websocket.recv(timeout=10) == "ping:ws-1"
    with websocket_connect(url, open_timeout=10) as websocket:
        assert websocket.response is not None
        generated = websocket.response.headers[SESSION_HEADER_NAME]
        assert is_uuid4(generated)
        assert websocket.recv(timeout=10) == generated


@every_framework
def test_500_carries_the_header(served: Served) -> None:
    with served.client() as client:
        failed = client.get("/error", headers={SESSION_HEADER_NAME: "error-1"})
    # A new connection: a server may close the one whose app raised (uvicorn does).
    with served.client() as client:
        after = client.get("/session")
    assert failed.status_code == 500
    assert failed.headers.get_list(SESSION_HEADER_NAME) == ["error-1"]
    assert "unhandled on purpose" not in failed.text  # the framework's own 500 page
    assert after.status_code == 200
    assert after.json()["id"] not in (None, "error-1")


@every_framework
def test_concurrent_requests_never_cross(served: Served) -> None:
    session_ids = [f"conc-{number}" for number in range(CONCURRENT_REQUESTS)]
    results = asyncio.run(
        get_concurrently(
            served.url, session_ids, "/sleep", clients=CONCURRENT_REQUESTS, params={"delay": "0.05"}
        )
    )
    assert len(results) == CONCURRENT_REQUESTS
    crossed = [
        (sent, response.status_code, response.headers.get(SESSION_HEADER_NAME), response.text)
        for sent, response in results
        if (response.headers.get(SESSION_HEADER_NAME), response.json())
        != (sent, {"first": sent, "second": sent})
    ]
    assert crossed == []
