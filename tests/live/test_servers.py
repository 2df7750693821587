"""The middlewares under real servers on 127.0.0.1: uvicorn for FastAPI, gunicorn for Flask."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tools.loopback import free_port, gunicorn_command, raw_request, running, uvicorn_command
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_connect

from ops_session import SESSION_HEADER_NAME

from ..support.clients import get_concurrently
from ..support.hostile import hostile_text

pytestmark = pytest.mark.servers

CONCURRENT_REQUESTS = 400


def is_uuid4(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value and uuid.UUID(value).version == 4
    except ValueError:
        return False


def serve(kind: str, target: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = uvicorn_command(target, port) if kind == "uvicorn" else gunicorn_command(target, port)
    with running(command, port) as base_url:
        yield base_url, port


@pytest.fixture(scope="module")
def fastapi_server() -> Iterator[tuple[str, int]]:
    yield from serve("uvicorn", "tests.live.apps.asgi_app:app")


@pytest.fixture(scope="module")
def fastapi_outermost_server() -> Iterator[tuple[str, int]]:
    yield from serve("uvicorn", "tests.live.apps.asgi_app:outermost")


@pytest.fixture(scope="module")
def fastapi_strict_server() -> Iterator[tuple[str, int]]:
    yield from serve("uvicorn", "tests.live.apps.asgi_app:strict")


@pytest.fixture(scope="module")
def flask_server() -> Iterator[tuple[str, int]]:
    yield from serve("gunicorn", "tests.live.apps.wsgi_app:app")


@pytest.fixture(scope="module")
def flask_strict_server() -> Iterator[tuple[str, int]]:
    yield from serve("gunicorn", "tests.live.apps.wsgi_app:strict")


@pytest.fixture(params=["fastapi", "fastapi-outermost", "flask"])
def server(request: pytest.FixtureRequest) -> tuple[str, int]:
    name = {
        "fastapi": "fastapi_server",
        "fastapi-outermost": "fastapi_outermost_server",
        "flask": "flask_server",
    }[request.param]
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(params=["fastapi", "flask"])
def strict_server(request: pytest.FixtureRequest) -> tuple[str, int]:
    name = "fastapi_strict_server" if request.param == "fastapi" else "flask_strict_server"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


HOSTILE_VALUES = hostile_text(sendable_only=True)


def test_valid_id_is_echoed(server: tuple[str, int]) -> None:
    base_url, _ = server
    response = httpx.get(f"{base_url}/session", headers={SESSION_HEADER_NAME: "chat-42"})
    assert response.status_code == 200
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["chat-42"]
    assert response.json()["id"] == "chat-42"
    assert response.json()["request_header"] == "chat-42"


def test_missing_id_gets_a_uuid4(server: tuple[str, int]) -> None:
    base_url, _ = server
    response = httpx.get(f"{base_url}/session")
    (generated,) = response.headers.get_list(SESSION_HEADER_NAME)
    assert is_uuid4(generated)
    assert response.json()["id"] == generated
    assert response.json()["request_header"] == generated


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_invalid_id_is_replaced_and_never_echoed(server: tuple[str, int], value: str) -> None:
    base_url, _ = server
    response = httpx.get(f"{base_url}/session", headers={SESSION_HEADER_NAME: value})
    assert response.status_code == 200
    (sent,) = response.headers.get_list(SESSION_HEADER_NAME)
    assert is_uuid4(sent)
    assert response.json()["id"] == sent
    assert value not in response.text


@pytest.mark.parametrize(
    "raw_value",
    [
        pytest.param(b"\xff\xfe\xfd", id="obs-text"),
        pytest.param("caf\u00e9".encode(), id="utf-8"),
    ],
)
def test_non_ascii_bytes_over_a_raw_socket_are_never_echoed(
    server: tuple[str, int], raw_value: bytes
) -> None:
    _, port = server
    status, headers, body = raw_request(
        port,
        b"GET /session HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Mirascope-Session-Id: " + raw_value + b"\r\n\r\n",
    )
    assert raw_value not in body
    assert status == 200
    (sent,) = headers["mirascope-session-id"]
    assert is_uuid4(sent)


@pytest.mark.parametrize("value", [*HOSTILE_VALUES, pytest.param("\u00ff", id="latin-1")])
def test_reject_mode_answers_400(strict_server: tuple[str, int], value: str) -> None:
    base_url, _ = strict_server
    headers = {SESSION_HEADER_NAME: value.encode("latin-1")}
    response = httpx.get(f"{base_url}/session", headers=headers)
    assert response.status_code == 400
    assert response.text == "Invalid Mirascope-Session-Id header.\n"
    assert SESSION_HEADER_NAME not in response.headers
    ok = httpx.get(f"{base_url}/session", headers={SESSION_HEADER_NAME: "fine-1"})
    assert ok.status_code == 200 and ok.json()["id"] == "fine-1"


def test_streaming_body_sees_the_session(server: tuple[str, int]) -> None:
    base_url, _ = server
    with httpx.stream("GET", f"{base_url}/stream", headers={SESSION_HEADER_NAME: "st-1"}) as r:
        assert r.headers[SESSION_HEADER_NAME] == "st-1"
        assert list(r.iter_lines()) == ["st-1"] * 5


def test_nested_session_inside_a_handler(server: tuple[str, int]) -> None:
    base_url, _ = server
    response = httpx.get(f"{base_url}/nested", headers={SESSION_HEADER_NAME: "outer-1"})
    assert response.json() == {"outer": "outer-1", "inner": "nested-inner", "after": "outer-1"}
    assert response.headers[SESSION_HEADER_NAME] == "outer-1"


def test_one_header_when_the_app_set_its_own(server: tuple[str, int]) -> None:
    base_url, _ = server
    response = httpx.get(f"{base_url}/own-header", headers={SESSION_HEADER_NAME: "incoming"})
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["app-chosen"]


def test_no_leak_into_later_requests_after_an_unhandled_error(server: tuple[str, int]) -> None:
    base_url, _ = server
    # A new connection each: uvicorn closes a connection whose app raised.
    failed = httpx.get(f"{base_url}/error", headers={SESSION_HEADER_NAME: "doomed-1"})
    assert failed.status_code == 500
    later = [httpx.get(f"{base_url}/session").json() for _ in range(10)]
    assert all(is_uuid4(seen["id"]) for seen in later)
    assert "doomed-1" not in {seen["id"] for seen in later}


def test_flask_error_and_next_request_share_a_thread_but_not_a_session(
    flask_server: tuple[str, int],
) -> None:
    base_url, _ = flask_server
    with httpx.Client(base_url=base_url) as client:
        threads = {client.get("/session").json()["thread"] for _ in range(3)}
        assert client.get("/error", headers={SESSION_HEADER_NAME: "doomed-2"}).status_code == 500
        later = [client.get("/session").json() for _ in range(5)]
    assert threads & {seen["thread"] for seen in later}, "expected the worker thread to be reused"
    assert all(seen["id"] not in ("doomed-2", None) for seen in later)


def test_add_middleware_500_is_handled_with_the_session_from_request_state(
    fastapi_server: tuple[str, int],
) -> None:
    base_url, _ = fastapi_server
    response = httpx.get(f"{base_url}/error", headers={SESSION_HEADER_NAME: "err-1"})
    assert response.status_code == 500
    assert response.text == "error in session err-1, current None"
    assert SESSION_HEADER_NAME not in response.headers  # the documented add_middleware caveat


def test_outermost_500_carries_the_header(fastapi_outermost_server: tuple[str, int]) -> None:
    base_url, _ = fastapi_outermost_server
    response = httpx.get(f"{base_url}/error", headers={SESSION_HEADER_NAME: "err-2"})
    assert response.status_code == 500
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["err-2"]
    assert response.text == "error in session err-2, current err-2"


@pytest.mark.parametrize("fixture", ["fastapi_server", "fastapi_outermost_server"])
def test_fastapi_sync_handler_background_task_and_lifespan(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    base_url, _ = request.getfixturevalue(fixture)
    headers = {SESSION_HEADER_NAME: "bg-1"}
    with httpx.Client(base_url=base_url, headers=headers) as client:
        sync = client.get("/sync").json()
        assert sync["id"] == "bg-1" and sync["thread"] != "MainThread"
        key = uuid.uuid4().hex
        client.get("/background", params={"key": key})
        deadline = time.monotonic() + 5
        while (seen := client.get("/background-result", params={"key": key}).json()["id"]) is None:
            assert time.monotonic() < deadline, "background task never ran"
            time.sleep(0.02)
        assert seen == "bg-1"
        assert client.get("/lifespan").json() == {"started": True, "session_at_startup": None}


def test_fastapi_attributes_from_the_request(fastapi_server: tuple[str, int]) -> None:
    base_url, _ = fastapi_server
    assert httpx.get(f"{base_url}/session").json()["attributes"] == {
        "method": "GET",
        "path": "/session",
    }


@pytest.mark.parametrize("fixture", ["fastapi_server", "fastapi_outermost_server"])
def test_websocket_handler_sees_the_session(request: pytest.FixtureRequest, fixture: str) -> None:
    _, port = request.getfixturevalue(fixture)
    url = f"ws://127.0.0.1:{port}/ws"
    with websocket_connect(url, additional_headers={SESSION_HEADER_NAME: "ws-1"}) as websocket:
        assert websocket.response is not None
        assert websocket.response.headers.get_all(SESSION_HEADER_NAME) == ["ws-1"]
        assert websocket.recv(timeout=5) == "ws-1"
        websocket.send("ping")
        assert websocket.recv(timeout=5) == "ping:ws-1"
    with websocket_connect(url) as websocket:
        assert websocket.response is not None
        generated = websocket.response.headers[SESSION_HEADER_NAME]
        assert is_uuid4(generated) and websocket.recv(timeout=5) == generated


def test_websocket_rejected_in_reject_mode(fastapi_strict_server: tuple[str, int]) -> None:
    _, port = fastapi_strict_server
    with pytest.raises(InvalidStatus) as rejected:
        websocket_connect(
            f"ws://127.0.0.1:{port}/ws", additional_headers={SESSION_HEADER_NAME: "a,b"}
        )
    assert rejected.value.response.status_code == 403  # how servers refuse a closed handshake


def test_concurrent_requests_under_uvicorn_never_cross(fastapi_server: tuple[str, int]) -> None:
    assert_no_cross_talk(send_concurrently(fastapi_server, clients=100))


def test_concurrent_requests_under_gunicorn_gthread_never_cross(
    flask_server: tuple[str, int],
) -> None:
    assert_no_cross_talk(send_concurrently(flask_server, clients=32))


def send_concurrently(server: tuple[str, int], *, clients: int) -> list[tuple[str, httpx.Response]]:
    base_url, _ = server
    session_ids = [f"conc-{number}" for number in range(CONCURRENT_REQUESTS)]
    return asyncio.run(get_concurrently(base_url, session_ids, "/sleep", clients=clients))


def assert_no_cross_talk(results: list[tuple[str, httpx.Response]]) -> None:
    assert len(results) == CONCURRENT_REQUESTS
    mismatches: list[Any] = []
    for session_id, response in results:
        seen = response.json()
        if (seen["first"], seen["second"], response.headers[SESSION_HEADER_NAME]) != (
            session_id,
            session_id,
        ) + (session_id,):
            mismatches.append((session_id, seen))
    assert mismatches == []
