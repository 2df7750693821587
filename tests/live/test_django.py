"""The Django middleware under real servers on 127.0.0.1: gunicorn (WSGI) and uvicorn (ASGI).

Every server runs the test project in `tests/live/apps/django_project`, whose sync and async
views report the session they see. Under uvicorn, sync views run in a worker thread; under
gunicorn, async views run in an event loop of their own: both must see the request's session.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tools.loopback import HOST, free_port, gunicorn_command, raw_request, running, uvicorn_command

from ops_session import SESSION_HEADER_NAME

from ..support.clients import get_concurrently
from ..support.hostile import hostile_text

pytestmark = pytest.mark.servers

PROJECT = "tests.live.apps.django_project"
CONCURRENT_REQUESTS = 300
HOSTILE_VALUES = hostile_text(sendable_only=True)

Server = tuple[str, int]


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def serve(kind: str, settings_module: str = "settings") -> Iterator[Server]:
    port = free_port()
    if kind == "uvicorn":
        command = uvicorn_command(f"{PROJECT}.asgi:application", port)
    else:
        command = gunicorn_command(f"{PROJECT}.wsgi:application", port)
    env = {"DJANGO_SETTINGS_MODULE": f"{PROJECT}.{settings_module}"}
    with running(command, port, env=env) as base_url:
        yield base_url, port


@pytest.fixture(scope="module")
def gunicorn_server() -> Iterator[Server]:
    yield from serve("gunicorn")


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[Server]:
    yield from serve("uvicorn")


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def strict_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    yield from serve(request.param, "strict_settings")


@pytest.fixture(scope="module")
def sync_middleware_server() -> Iterator[Server]:
    yield from serve("uvicorn", "sync_middleware_settings")


def get(server: Server, path: str, session_id: str | None = None, **params: str) -> httpx.Response:
    base_url, _ = server
    headers = {} if session_id is None else {SESSION_HEADER_NAME: session_id}
    return httpx.get(f"{base_url}{path}", headers=headers, params=params, timeout=10)


def recorded(server: Server, key: str, *, timeout: float = 5.0) -> str | None:
    """What the streamed body or view of the request that named `key` saw when it finished."""
    deadline = time.monotonic() + timeout
    while not (seen := get(server, "/recorded", key=key).json())["done"]:
        assert time.monotonic() < deadline, f"nothing recorded for {key}"
        time.sleep(0.02)
    value: str | None = seen["id"]
    return value


@pytest.mark.parametrize("path", ["/session", "/session-async"])
def test_valid_id_reaches_sync_and_async_views(server: Server, path: str) -> None:
    response = get(server, path, "chat-42")
    assert response.status_code == 200
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["chat-42"]
    seen = response.json()
    assert (seen["id"], seen["request_header"], seen["before"]) == ("chat-42", "chat-42", None)
    assert seen["attributes"] == {"method": "GET", "path": path}
    assert response.headers["X-Session-After"] == "none"


@pytest.mark.parametrize("path", ["/session", "/session-async"])
def test_missing_id_is_generated_and_shown_in_the_request(server: Server, path: str) -> None:
    response = get(server, path)
    (generated,) = response.headers.get_list(SESSION_HEADER_NAME)
    assert is_uuid4(generated)
    seen = response.json()
    assert seen["id"] == seen["request_header"] == seen["meta"] == generated


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_id_is_replaced_and_never_echoed(server: Server, value: str) -> None:
    response = get(server, "/session", value)
    assert response.status_code == 200
    (sent,) = response.headers.get_list(SESSION_HEADER_NAME)
    assert is_uuid4(sent) and response.json()["id"] == sent
    assert value not in response.text


@pytest.mark.parametrize("raw_value", [b"\xff\xfe\xfd", "caf\u00e9".encode()], ids=["obs", "utf8"])
def test_non_ascii_bytes_are_never_echoed(server: Server, raw_value: bytes) -> None:
    _, port = server
    status, headers, body = raw_request(
        port,
        b"GET /session HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Mirascope-Session-Id: " + raw_value + b"\r\n\r\n",
    )
    assert status == 200 and raw_value not in body
    (sent,) = headers["mirascope-session-id"]
    assert is_uuid4(sent)


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_reject_mode_answers_400_naming_the_header(strict_server: Server, value: str) -> None:
    response = get(strict_server, "/session-async", value)
    assert response.status_code == 400
    assert response.text == "Invalid Mirascope-Session-Id header.\n"
    assert SESSION_HEADER_NAME not in response.headers
    assert get(strict_server, "/session", "fine-1").json()["id"] == "fine-1"


@pytest.mark.parametrize("path", ["/stream", "/stream-async"])
def test_streamed_bodies_run_in_the_session(server: Server, path: str) -> None:
    base_url, _ = server
    key = uuid.uuid4().hex
    headers = {SESSION_HEADER_NAME: "st-1"}
    with httpx.stream("GET", f"{base_url}{path}?key={key}", headers=headers) as response:
        assert response.headers[SESSION_HEADER_NAME] == "st-1"
        assert list(response.iter_lines()) == ["st-1"] * 5
    assert recorded(server, key) == "st-1"


def test_gunicorn_closes_an_abandoned_stream_in_its_session(gunicorn_server: Server) -> None:
    _, port = gunicorn_server
    key = uuid.uuid4().hex
    with socket.create_connection((HOST, port), timeout=10) as connection:
        connection.sendall(
            f"GET /stream?key={key}&count=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"{SESSION_HEADER_NAME}: abandoned-1\r\n\r\n".encode()
        )
        assert b"abandoned-1" in connection.recv(65536)
    # The server's next write fails, and it calls close(): the generator's `finally` records.
    assert recorded(gunicorn_server, key, timeout=15) == "abandoned-1"


@pytest.mark.parametrize("path", ["/error", "/error-async"])
def test_500_page_carries_the_header_and_the_session_ends(server: Server, path: str) -> None:
    failed = get(server, path, "doomed-1")
    assert failed.status_code == 500
    assert failed.headers.get_list(SESSION_HEADER_NAME) == ["doomed-1"]
    assert "Server Error (500)" in failed.text
    later = [get(server, "/session").json() for _ in range(10)]
    assert all(seen["before"] is None and is_uuid4(seen["id"]) for seen in later)


def test_gunicorn_thread_after_an_error_starts_without_a_session(gunicorn_server: Server) -> None:
    base_url, _ = gunicorn_server
    with httpx.Client(base_url=base_url) as client:
        threads = {client.get("/session").json()["thread"] for _ in range(3)}
        assert client.get("/error", headers={SESSION_HEADER_NAME: "doomed-2"}).status_code == 500
        later = [client.get("/session").json() for _ in range(5)]
    assert threads & {seen["thread"] for seen in later}, "expected the worker thread to be reused"
    assert all(seen["before"] is None and seen["id"] != "doomed-2" for seen in later)


def test_view_chosen_header_and_nested_sessions(server: Server) -> None:
    assert get(server, "/own-header", "incoming").headers.get_list(SESSION_HEADER_NAME) == [
        "app-chosen"
    ]
    assert get(server, "/nested", "outer-1").json() == {
        "outer": "outer-1",
        "inner": "nested-inner",
        "after": "outer-1",
    }


def test_log_filter_in_logging_stamps_view_records(server: Server) -> None:
    marker = uuid.uuid4().hex
    lines = get(server, "/log", "log-1", marker=marker).json()["lines"]
    assert lines == [f"session=log-1 views: view ran {marker}"]


def test_uvicorn_client_disconnect_cancels_the_view_inside_its_session(
    uvicorn_server: Server,
) -> None:
    _, port = uvicorn_server
    key = uuid.uuid4().hex
    with socket.create_connection((HOST, port), timeout=10) as connection:
        connection.sendall(
            f"GET /slow?key={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"{SESSION_HEADER_NAME}: gone-1\r\n\r\n".encode()
        )
        time.sleep(0.3)
    assert recorded(uvicorn_server, key) == "gone-1"
    later = [get(uvicorn_server, "/session-async").json() for _ in range(5)]
    assert all(seen["before"] is None and seen["id"] != "gone-1" for seen in later)


@pytest.mark.parametrize("path", ["/session", "/session-async", "/stream", "/error"])
def test_sync_only_middleware_below_ours_under_uvicorn(
    sync_middleware_server: Server, path: str
) -> None:
    for number in range(5):
        response = get(sync_middleware_server, path, f"mixin-{number}")
        assert response.status_code == (500 if path == "/error" else 200)
        assert response.headers[SESSION_HEADER_NAME] == f"mixin-{number}"
        assert response.headers["X-Sync-Middleware-Saw"] == f"mixin-{number}"
        assert response.headers["X-Session-After"] == "none"
        if path.startswith("/session"):
            assert response.json()["sync_middleware"] == f"mixin-{number}"


@pytest.mark.parametrize(("kind", "clients"), [("gunicorn", 32), ("uvicorn", 100)])
@pytest.mark.parametrize("path", ["/sleep", "/sleep-async"])
def test_concurrent_requests_never_cross(
    request: pytest.FixtureRequest, kind: str, clients: int, path: str
) -> None:
    base_url, _ = request.getfixturevalue(f"{kind}_server")
    session_ids = [f"conc-{number}" for number in range(CONCURRENT_REQUESTS)]
    results = asyncio.run(get_concurrently(base_url, session_ids, path, clients=clients))
    assert len(results) == CONCURRENT_REQUESTS
    crossed: list[Any] = []
    for session_id, response in results:
        seen = response.json()
        if (seen["first"], seen["second"], response.headers[SESSION_HEADER_NAME]) != (
            session_id,
            session_id,
            session_id,
        ):
            crossed.append((session_id, seen))
    assert crossed == []
