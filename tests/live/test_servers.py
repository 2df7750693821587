"""The middlewares under real servers on 127.0.0.1 ephemeral ports, stopped by process id.

One conformance matrix runs against every common ASGI and WSGI server, with the test apps of
`tests/live/apps` (the ASGI app both through `add_middleware` and wrapped outermost): a valid id
is used and echoed, a missing or invalid one is replaced and shown to the app
(`update_request_header`), hostile bytes sent over a raw socket get a clear outcome and never an
echo or a crash, streamed bodies, nested sessions and concurrent requests each see their own
session, and an unhandled error leaves nothing behind for the next request. The tests after the
matrix cover what only one framework has: FastAPI's threadpool, background tasks, lifespan,
websockets and 500 handler, Flask's reused worker threads, and reject mode.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tools.loopback import HOST, free_port, gunicorn_command, raw_request, running, uvicorn_command
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_connect

from ops_session import SESSION_HEADER_NAME, is_valid_session_id

from ..support.clients import get_concurrently
from ..support.hostile import hostile_text

pytestmark = pytest.mark.servers

ASGI_APP = "tests.live.apps.asgi_app:app"
ASGI_OUTERMOST = "tests.live.apps.asgi_app:outermost"
WSGI_APP = "tests.live.apps.wsgi_app:app"
CONCURRENT_REQUESTS = 200


@dataclass(frozen=True)
class Server:
    name: str
    command: Callable[[int], list[str]]
    http2: bool = False  # the client speaks HTTP/2 (prior knowledge, no TLS)


def module(*arguments: str) -> list[str]:
    return [sys.executable, "-m", *arguments]


def uvicorn(http: str, app: str = ASGI_APP) -> Callable[[int], list[str]]:
    return lambda port: module(
        "uvicorn", app, "--http", http, "--host", HOST, "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    )  # fmt: skip


def hypercorn(port: int) -> list[str]:
    return module("hypercorn", ASGI_APP, "--bind", f"{HOST}:{port}", "--log-level", "warning")


def granian(interface: str, app: str) -> Callable[[int], list[str]]:
    return lambda port: module(
        "granian", "--interface", interface, "--host", HOST, "--port", str(port),
        "--workers", "1", "--log-level", "warning", app,
    )  # fmt: skip


def gunicorn(worker_class: str, app: str, *options: str) -> Callable[[int], list[str]]:
    return lambda port: module(
        "gunicorn", app, "--bind", f"{HOST}:{port}", "--workers", "1",
        "--worker-class", worker_class, "--log-level", "warning", *options,
    )  # fmt: skip


def waitress(port: int) -> list[str]:
    return module("waitress", f"--listen={HOST}:{port}", "--threads=8", WSGI_APP)


SERVERS = [
    Server("uvicorn-h11", uvicorn("h11")),
    Server("uvicorn-httptools", uvicorn("httptools")),
    Server("uvicorn-outermost", uvicorn("h11", ASGI_OUTERMOST)),
    Server("hypercorn-http1.1", hypercorn),
    Server("hypercorn-http2", hypercorn, http2=True),
    Server("granian-asgi", granian("asgi", ASGI_APP)),
    Server("gunicorn-uvicorn-worker", gunicorn("uvicorn_worker.UvicornWorker", ASGI_APP)),
    Server("gunicorn-sync", gunicorn("sync", WSGI_APP)),
    Server("gunicorn-gthread", gunicorn("gthread", WSGI_APP, "--threads", "8")),
    Server("waitress", waitress),
    Server("granian-wsgi", granian("wsgi", WSGI_APP)),
]


@dataclass(frozen=True)
class Running:
    server: Server
    url: str
    port: int

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, http1=not self.server.http2, http2=self.server.http2, timeout=30
        )


@pytest.fixture(scope="module", params=SERVERS, ids=[server.name for server in SERVERS])
def served(request: pytest.FixtureRequest) -> Iterator[Running]:
    server: Server = request.param
    port = free_port()
    with running(server.command(port), port) as url:
        yield Running(server, url, port)


def test_valid_id_is_used_and_echoed(served: Running) -> None:
    with served.client() as client:
        response = client.get("/session", headers={SESSION_HEADER_NAME: "matrix-1"})
    assert response.status_code == 200
    assert response.http_version == ("HTTP/2" if served.server.http2 else "HTTP/1.1")
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["matrix-1"]
    assert response.json()["id"] == "matrix-1"
    assert response.json()["request_header"] == "matrix-1"


@pytest.mark.parametrize("value", [None, *hostile_text(sendable_only=True)])
def test_missing_or_invalid_id_is_replaced(served: Running, value: str | None) -> None:
    headers = {} if value is None else {SESSION_HEADER_NAME: value}
    with served.client() as client:
        response = client.get("/session", headers=headers)
    assert response.status_code == 200
    (generated,) = response.headers.get_list(SESSION_HEADER_NAME)
    assert is_uuid4(generated)
    assert response.json()["id"] == generated
    assert response.json()["request_header"] == generated  # update_request_header
    if value:
        assert value not in response.text


# (case, raw header lines, what a 200 response's session header must be: an exact id, or
# "generated" for a new UUID4, or "either" where servers differ in how they pass it on)
RAW_CASES: list[tuple[str, bytes, str]] = [
    ("crlf-injection", b"Mirascope-Session-Id: crlf-1\r\nX-Injected: yes", "crlf-1"),
    ("bare-cr", b"Mirascope-Session-Id: a\rX-Injected: yes", "generated"),
    ("nul", b"Mirascope-Session-Id: a\x00b", "generated"),
    ("obs-text", b"Mirascope-Session-Id: caf\xe9\xff", "generated"),
    ("utf-8", b"Mirascope-Session-Id: caf\xc3\xa9", "generated"),
    ("64-kib", b"Mirascope-Session-Id: " + b"a" * 65536, "generated"),
    (
        "repeated-1000",
        b"\r\n".join(b"Mirascope-Session-Id: rep-%d" % n for n in range(1000)),
        "either",
    ),
    ("odd-case-name", b"mIrAsCoPe-SeSsIoN-iD: odd-1", "odd-1"),
    ("upper-case-name", b"MIRASCOPE-SESSION-ID: upper-1", "upper-1"),
    ("empty", b"Mirascope-Session-Id:", "generated"),
    ("whitespace-only", b"Mirascope-Session-Id:    \t ", "generated"),
]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [pytest.param(lines, expected, id=case) for case, lines, expected in RAW_CASES],
)
def test_hostile_bytes_over_a_raw_socket(served: Running, lines: bytes, expected: str) -> None:
    """Sent as HTTP/1.1 bytes, which every server here also accepts on its port."""
    request = b"GET /session HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + lines
    try:
        status, headers, body = raw_request(served.port, request + b"\r\n\r\n")
    except (OSError, ValueError, IndexError):
        status, headers, body = 0, {}, b""  # the server dropped a request it would not parse
    echoed = headers.get(SESSION_HEADER_NAME.lower(), [])
    assert "x-injected" not in headers
    assert status < 500, body
    if status == 200:
        (session_id,) = echoed
        assert is_valid_session_id(session_id)
        if expected == "generated":
            assert is_uuid4(session_id)
        elif expected != "either":
            assert session_id == expected
        assert b'"id":"%s"' % session_id.encode() in body.replace(b" ", b"")
        assert b"\xff" not in body and "caf\u00e9".encode() not in body
    else:
        assert echoed == [], (status, echoed)  # the server refused it before the app ran
    with served.client() as client:  # and the server still answers
        assert client.get("/session").status_code == 200


def test_streamed_body_sees_the_session(served: Running) -> None:
    with served.client() as client:
        response = client.get("/stream", headers={SESSION_HEADER_NAME: "stream-1"})
    assert response.text.split() == ["stream-1"] * 5


def test_nested_session_inside_a_handler(served: Running) -> None:
    with served.client() as client:
        response = client.get("/nested", headers={SESSION_HEADER_NAME: "outer-1"})
    assert response.json() == {"outer": "outer-1", "inner": "nested-inner", "after": "outer-1"}
    assert response.headers[SESSION_HEADER_NAME] == "outer-1"


def test_one_header_when_the_app_set_its_own(served: Running) -> None:
    with served.client() as client:
        response = client.get("/own-header", headers={SESSION_HEADER_NAME: "incoming"})
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["app-chosen"]


def test_concurrent_requests_never_cross(served: Running) -> None:
    # Over HTTP/2, the requests of each client are streams interleaved on its one connection.
    session_ids = [f"conc-{number}" for number in range(CONCURRENT_REQUESTS)]
    results = asyncio.run(
        get_concurrently(
            served.url,
            session_ids,
            "/sleep",
            clients=4 if served.server.http2 else 64,
            streams_per_client=16 if served.server.http2 else 1,
            http2=served.server.http2,
            params={"delay": "0.02"},
        )
    )
    crossed = [
        (sent, response.headers.get(SESSION_HEADER_NAME), response.text)
        for sent, response in results
        if (response.headers.get(SESSION_HEADER_NAME), response.json())
        != (sent, {"first": sent, "second": sent})
    ]
    assert crossed == []


def test_error_leaves_nothing_for_the_next_request(served: Running) -> None:
    with served.client() as client:
        failed = client.get("/error", headers={SESSION_HEADER_NAME: "error-1"})
    assert failed.status_code == 500
    with served.client() as client:
        after = client.get("/session")
    assert after.status_code == 200
    assert after.json()["id"] not in (None, "error-1")
    assert after.headers[SESSION_HEADER_NAME] == after.json()["id"]


def is_uuid4(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value and uuid.UUID(value).version == 4
    except ValueError:
        return False


# What only one framework has.


def serve(command: list[str], port: int) -> Iterator[tuple[str, int]]:
    with running(command, port) as base_url:
        yield base_url, port


@pytest.fixture(scope="module")
def fastapi_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    yield from serve(uvicorn_command("tests.live.apps.asgi_app:app", port), port)


@pytest.fixture(scope="module")
def fastapi_outermost_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    yield from serve(uvicorn_command("tests.live.apps.asgi_app:outermost", port), port)


@pytest.fixture(scope="module")
def fastapi_strict_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    yield from serve(uvicorn_command("tests.live.apps.asgi_app:strict", port), port)


@pytest.fixture(scope="module")
def flask_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    yield from serve(gunicorn_command("tests.live.apps.wsgi_app:app", port), port)


@pytest.fixture(scope="module")
def flask_strict_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    yield from serve(gunicorn_command("tests.live.apps.wsgi_app:strict", port), port)


@pytest.fixture(params=["fastapi", "flask"])
def strict_server(request: pytest.FixtureRequest) -> tuple[str, int]:
    name = "fastapi_strict_server" if request.param == "fastapi" else "flask_strict_server"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "value", [*hostile_text(sendable_only=True), pytest.param("\u00ff", id="latin-1")]
)
def test_reject_mode_answers_400(strict_server: tuple[str, int], value: str) -> None:
    base_url, _ = strict_server
    headers = {SESSION_HEADER_NAME.encode(): value.encode("latin-1")}
    response = httpx.get(f"{base_url}/session", headers=headers)
    assert response.status_code == 400
    assert response.text == "Invalid Mirascope-Session-Id header.\n"
    assert SESSION_HEADER_NAME not in response.headers
    ok = httpx.get(f"{base_url}/session", headers={SESSION_HEADER_NAME: "fine-1"})
    assert ok.status_code == 200 and ok.json()["id"] == "fine-1"


@pytest.fixture(scope="module")
def flask_one_thread_server() -> Iterator[tuple[str, int]]:
    """gunicorn with one thread: every request runs on the thread the one before it used."""
    port = free_port()
    yield from serve(gunicorn_command("tests.live.apps.wsgi_app:app", port, threads=1), port)


def test_flask_error_and_next_request_share_a_thread_but_not_a_session(
    flask_one_thread_server: tuple[str, int],
) -> None:
    base_url, _ = flask_one_thread_server
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


def test_installed_app_names_the_session_of_an_unhandled_error_in_the_server_log(
    tmp_path: Path,
) -> None:
    port, output = free_port(), tmp_path / "uvicorn.log"
    command = uvicorn_command("tests.live.apps.asgi_app:installed", port)
    with running(command, port, output=output) as base_url:
        response = httpx.get(f"{base_url}/error", headers={SESSION_HEADER_NAME: "err-3"})
    assert response.status_code == 500
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["err-3"]
    assert response.text == "error in session err-3, current err-3"
    log = output.read_text(encoding="utf-8")
    assert "Exception in ASGI application" in log
    assert "ops-session: raised in session err-3" in log


def test_misconfiguration_stops_uvicorn_with_lifespan_on(tmp_path: Path) -> None:
    port = free_port()
    command = uvicorn_command("tests.live.apps.asgi_app:misconfigured", port, "--lifespan", "on")
    with pytest.raises(RuntimeError, match="did not start") as failed:
        with running(command, port):
            pass  # pragma: no cover
    assert "which the validator rejects" in str(failed.value)


def test_misconfiguration_under_lifespan_auto_is_the_documented_limit(tmp_path: Path) -> None:
    port, output = free_port(), tmp_path / "uvicorn.log"
    command = [
        "info" if word == "warning" else word
        for word in uvicorn_command("tests.live.apps.asgi_app:misconfigured", port)
    ]
    with running(command, port, output=output) as base_url:
        assert httpx.get(f"{base_url}/session").status_code == 500
    log = output.read_text(encoding="utf-8")
    assert "ASGI 'lifespan' protocol appears unsupported." in log
    assert "which the validator rejects" in log
