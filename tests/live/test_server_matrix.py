"""One conformance suite, run against every common ASGI and WSGI server.

Each server is started on a 127.0.0.1 ephemeral port with the test apps (`tests/apps`), and
stopped by process id when its cases are done. The cases are the core behaviours: a valid id is
used and echoed, a missing or invalid one is replaced, hostile bytes sent over a raw socket get a
clear outcome and never an echo or a crash, streamed bodies and concurrent requests each see
their own session, and an unhandled error leaves nothing behind for the next request.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from tools.loopback import HOST, free_port, raw_request, running

from ops_session import SESSION_HEADER_NAME, is_valid_session_id

from ..support.clients import get_concurrently
from ..support.hostile import hostile_text

pytestmark = pytest.mark.servers

ASGI_APP = "tests.live.apps.asgi_app:app"
WSGI_APP = "tests.live.apps.wsgi_app:app"
CONCURRENT_REQUESTS = 200


@dataclass(frozen=True)
class Server:
    name: str
    command: Callable[[int], list[str]]
    http2: bool = False  # the client speaks HTTP/2 (prior knowledge, no TLS)


def module(*arguments: str) -> list[str]:
    return [sys.executable, "-m", *arguments]


def uvicorn(http: str) -> Callable[[int], list[str]]:
    return lambda port: module(
        "uvicorn", ASGI_APP, "--http", http, "--host", HOST, "--port", str(port),
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


@pytest.mark.parametrize("value", [None, *hostile_text(sendable_only=True)])
def test_missing_or_invalid_id_is_replaced(served: Running, value: str | None) -> None:
    headers = {} if value is None else {SESSION_HEADER_NAME: value}
    with served.client() as client:
        response = client.get("/session", headers=headers)
    assert response.status_code == 200
    (generated,) = response.headers.get_list(SESSION_HEADER_NAME)
    assert uuid.UUID(generated).version == 4
    assert response.json()["id"] == generated
    if value:
        assert value not in response.text


# (case, raw header lines, what a 200 response's session header must be: an exact id, or
# "generated" for a new UUID4, or "either" where servers differ in how they pass it on)
RAW_CASES: list[tuple[str, bytes, str]] = [
    ("crlf-injection", b"Mirascope-Session-Id: crlf-1\r\nX-Injected: yes", "crlf-1"),
    ("bare-cr", b"Mirascope-Session-Id: a\rX-Injected: yes", "generated"),
    ("nul", b"Mirascope-Session-Id: a\x00b", "generated"),
    ("obs-text", b"Mirascope-Session-Id: caf\xe9\xff", "generated"),
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
            assert uuid.UUID(session_id).version == 4
        elif expected != "either":
            assert session_id == expected
        assert b'"id":"%s"' % session_id.encode() in body.replace(b" ", b"")
    else:
        assert echoed == [], (status, echoed)  # the server refused it before the app ran
    with served.client() as client:  # and the server still answers
        assert client.get("/session").status_code == 200


def test_streamed_body_sees_the_session(served: Running) -> None:
    with served.client() as client:
        response = client.get("/stream", headers={SESSION_HEADER_NAME: "stream-1"})
    assert response.text.split() == ["stream-1"] * 5


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
