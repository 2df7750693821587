"""The example apps, in-process and under real servers with the FastAPI-to-Flask hop."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi.testclient import TestClient

from ops_session import SESSION_HEADER_NAME

from .servers import example_services

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fastapi_example_in_process() -> None:
    with TestClient(load("fastapi_app").app) as client:
        response = client.get("/session", headers={SESSION_HEADER_NAME: "chat-42"})
    assert response.headers[SESSION_HEADER_NAME] == "chat-42"
    assert response.json() == {
        "service": "fastapi_app",
        "session_id": "chat-42",
        "attributes": {"service": "fastapi_app"},
        "received_header": "chat-42",
    }


def test_flask_example_in_process() -> None:
    client = load("flask_app").app.test_client()
    response = client.get("/session")
    generated = response.headers[SESSION_HEADER_NAME]
    assert uuid.UUID(generated).version == 4
    assert response.json == {
        "service": "flask_app",
        "session_id": generated,
        "attributes": {"service": "flask_app"},
        "received_header": generated,
    }


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[str, str]]:
    with example_services() as urls:
        yield urls


@pytest.mark.servers
def test_one_session_spans_both_services(services: tuple[str, str]) -> None:
    fastapi_url, _ = services
    response = httpx.get(f"{fastapi_url}/hop", headers={SESSION_HEADER_NAME: "chat-42"})
    assert response.status_code == 200
    assert response.headers[SESSION_HEADER_NAME] == "chat-42"
    body = response.json()
    assert body["fastapi_app"]["session_id"] == "chat-42"
    assert body["flask_app"]["session_id"] == "chat-42"
    assert body["flask_app"]["received_header"] == "chat-42"


@pytest.mark.servers
@pytest.mark.parametrize("headers", [{}, {SESSION_HEADER_NAME: "<script>"}], ids=["none", "bad"])
def test_generated_session_crosses_the_hop(
    services: tuple[str, str], headers: dict[str, str]
) -> None:
    fastapi_url, _ = services
    response = httpx.get(f"{fastapi_url}/hop", headers=headers)
    generated = response.headers[SESSION_HEADER_NAME]
    assert uuid.UUID(generated).version == 4
    assert response.json()["flask_app"]["session_id"] == generated
    assert "<script>" not in response.text


@pytest.mark.servers
def test_flask_example_under_gunicorn(services: tuple[str, str]) -> None:
    _, flask_url = services
    response = httpx.get(f"{flask_url}/session", headers={SESSION_HEADER_NAME: "direct-1"})
    assert response.json()["session_id"] == "direct-1"
    assert response.headers[SESSION_HEADER_NAME] == "direct-1"
