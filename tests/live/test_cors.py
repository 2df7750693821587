"""CORS setups in which a page on another origin may send the session header and read it back.

Starlette/FastAPI's `CORSMiddleware` (under uvicorn) and Flask-CORS (under gunicorn), with the
requests a browser sends: the preflight `OPTIONS`, then the actual request with `Origin`.
`test_browser.py` repeats the decisive part in Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tools.loopback import free_port, gunicorn_command, running, uvicorn_command

from ops_session import SESSION_HEADER_NAME

pytestmark = pytest.mark.servers

PAGE_ORIGIN = "http://127.0.0.1:8000"
OTHER_ORIGIN = "http://evil.example"
PREFLIGHT = {
    "Origin": PAGE_ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,mirascope-session-id",
}
COMMANDS = {
    "fastapi": lambda port: uvicorn_command("tests.live.apps.cors_apps:fastapi_app", port),
    "flask-cors": lambda port: gunicorn_command("tests.live.apps.cors_apps:flask_app", port),
}


@pytest.fixture(scope="module", params=list(COMMANDS))
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    with running(COMMANDS[request.param](port), port, env={"PAGE_ORIGIN": PAGE_ORIGIN}) as url:
        yield url


@pytest.fixture(scope="module")
def fastapi_server() -> Iterator[str]:
    port = free_port()
    with running(COMMANDS["fastapi"](port), port, env={"PAGE_ORIGIN": PAGE_ORIGIN}) as url:
        yield url


def header_list(response: httpx.Response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.headers.get(name, "").split(",") if item}


def test_preflight_allows_the_page_to_send_the_session_header(server: str) -> None:
    response = httpx.options(f"{server}/session", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert "mirascope-session-id" in header_list(response, "access-control-allow-headers")


def test_actual_response_exposes_the_session_header(server: str) -> None:
    response = httpx.post(
        f"{server}/session", headers={"Origin": PAGE_ORIGIN, SESSION_HEADER_NAME: "cors-1"}
    )
    assert response.json() == {"session_id": "cors-1"}
    assert response.headers[SESSION_HEADER_NAME] == "cors-1"
    assert response.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert "mirascope-session-id" in header_list(response, "access-control-expose-headers")


def test_other_origins_are_not_allowed(server: str) -> None:
    response = httpx.options(f"{server}/session", headers={**PREFLIGHT, "Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in response.headers
    response = httpx.get(f"{server}/session", headers={"Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in response.headers  # the browser reads nothing


def test_fastapi_answers_the_preflight_before_any_session_starts(fastapi_server: str) -> None:
    """CORSMiddleware added after SessionMiddleware runs first: no session for the preflight."""
    response = httpx.options(f"{fastapi_server}/session", headers=PREFLIGHT)
    assert response.status_code == 200
    assert SESSION_HEADER_NAME not in response.headers
    actual = httpx.get(f"{fastapi_server}/session", headers={"Origin": PAGE_ORIGIN})
    assert actual.headers[SESSION_HEADER_NAME] == actual.json()["session_id"]
