"""The example services under real servers: one session across FastAPI, Flask and Django.

The FastAPI example (uvicorn) calls the Flask example (gunicorn), which calls the Django example
(gunicorn), on 127.0.0.1. Each exports its spans and log lines to files, so the tests can check
what each process recorded of one request.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tools.example_services import (
    ExampleService,
    example_services,
    example_worker,
    mcp_example,
    wait_for_spans,
    wait_for_trace,
)
from tools.mcp_agent import CONVERSATIONS, interleaved_conversations

from ops_session import SESSION_HEADER_NAME

pytestmark = pytest.mark.servers

Services = tuple[ExampleService, ExampleService, ExampleService]
SESSION_ATTRIBUTES_JSON = '{"app":"chat-demo"}'
HOOKED_CLIENTS = ["/hop", "/hop/httpx-sync", "/hop/requests"]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The services with `OTEL_PROPAGATORS=tracecontext,baggage,ops_session`, as `make demo`."""
    with example_services(tmp_path_factory.mktemp("telemetry")) as started:
        yield started


@pytest.fixture(scope="module")
def services_without_propagator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The services with OpenTelemetry's default propagators, which do not name ops_session."""
    directory = tmp_path_factory.mktemp("telemetry")
    with example_services(directory, propagators="tracecontext,baggage") as started:
        yield started


def hop(fastapi_app: ExampleService, path: str, headers: dict[str, str]) -> dict[str, Any]:
    response = httpx.get(f"{fastapi_app.url}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["fastapi_app"]["session_id"] == response.headers[SESSION_HEADER_NAME]
    return body


def test_one_session_reaches_every_span_and_log_line_of_both_services(services: Services) -> None:
    fastapi_app, flask_app, _ = services
    hopped = services[:2]  # /hop goes no further than Flask
    trace_id = secrets.token_hex(16)
    log_lines_before = [len(service.log_lines()) for service in hopped]
    body = hop(
        fastapi_app,
        "/hop",
        {SESSION_HEADER_NAME: "chat-42", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert body["flask_app"]["session_id"] == "chat-42"

    spans = wait_for_trace(hopped, trace_id)
    by_service: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_service.setdefault(span["resource"]["attributes"]["service.name"], []).append(span)
        assert span["attributes"]["session.id"] == "chat-42", span["name"]
        assert span["attributes"]["mirascope.ops.session.id"] == "chat-42", span["name"]
        assert span["attributes"]["mirascope.ops.session.attributes"] == SESSION_ATTRIBUTES_JSON
    (client_span,) = [s for s in by_service["fastapi_app"] if s["kind"] == "SpanKind.CLIENT"]
    (flask_server_span,) = [s for s in by_service["flask_app"] if s["kind"] == "SpanKind.SERVER"]
    assert flask_server_span["parent_id"] == client_span["context"]["span_id"]

    for service, before in zip(hopped, log_lines_before, strict=True):
        lines = service.log_lines()[before:]
        assert lines, f"{service.url} logged nothing for the request"
        assert all(" session=chat-42 " in line for line in lines), lines
    assert any("calling the Flask example" in line for line in fastapi_app.log_lines())
    assert any("reading the session" in line for line in flask_app.log_lines())


@pytest.mark.parametrize("path", HOOKED_CLIENTS)
def test_client_hooks_carry_the_session_without_the_propagator(
    services_without_propagator: Services, path: str
) -> None:
    fastapi_app, *_ = services_without_propagator
    body = hop(fastapi_app, path, {SESSION_HEADER_NAME: f"hooked-{path.rsplit('/', 1)[1]}"})
    assert body["flask_app"]["received_header"] == body["fastapi_app"]["session_id"]
    assert body["flask_app"]["session_id"] == body["fastapi_app"]["session_id"]


@pytest.mark.parametrize(
    ("fixture", "carried"),
    [("services", True), ("services_without_propagator", False)],
    ids=["otel-propagators-name-ops-session", "default-otel-propagators"],
)
def test_otel_propagators_alone_carry_the_session(
    request: pytest.FixtureRequest, fixture: str, carried: bool
) -> None:
    fastapi_app, *_ = request.getfixturevalue(fixture)
    body = hop(fastapi_app, "/hop/propagator", {SESSION_HEADER_NAME: "propagated-1"})
    assert (body["flask_app"]["session_id"] == "propagated-1") is carried
    if not carried:
        assert uuid.UUID(body["flask_app"]["session_id"]).version == 4


@pytest.mark.parametrize("headers", [{}, {SESSION_HEADER_NAME: "<script>"}], ids=["none", "bad"])
def test_generated_session_crosses_the_hop(services: Services, headers: dict[str, str]) -> None:
    fastapi_app, *_ = services
    body = hop(fastapi_app, "/hop", headers)
    generated = body["fastapi_app"]["session_id"]
    assert uuid.UUID(generated).version == 4
    assert body["flask_app"]["session_id"] == generated
    assert "<script>" not in str(body)


def test_flask_example_under_gunicorn(services: Services) -> None:
    _, flask_app, _ = services
    response = httpx.get(f"{flask_app.url}/session", headers={SESSION_HEADER_NAME: "direct-1"})
    assert response.headers[SESSION_HEADER_NAME] == "direct-1"
    assert response.json() == {
        "service": "flask_app",
        "session_id": "direct-1",
        "attributes": {"app": "chat-demo"},
        "received_header": "direct-1",
    }


def test_one_session_crosses_fastapi_flask_and_django(services: Services) -> None:
    trace_id = secrets.token_hex(16)
    log_lines_before = [len(service.log_lines()) for service in services]
    body = hop(
        services[0],
        "/hop/django",
        {SESSION_HEADER_NAME: "chat-43", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert body["flask_app"]["session_id"] == body["django_app"]["session_id"] == "chat-43"
    assert body["django_app"]["received_header"] == "chat-43"

    spans = wait_for_trace(services, trace_id)
    by_service: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_service.setdefault(span["resource"]["attributes"]["service.name"], []).append(span)
        assert span["attributes"]["session.id"] == "chat-43", span["name"]
        assert span["attributes"]["mirascope.ops.session.attributes"] == SESSION_ATTRIBUTES_JSON
    assert set(by_service) == {"fastapi_app", "flask_app", "django_app"}
    (flask_client_span,) = [s for s in by_service["flask_app"] if s["kind"] == "SpanKind.CLIENT"]
    (django_server_span,) = [s for s in by_service["django_app"] if s["kind"] == "SpanKind.SERVER"]
    assert django_server_span["parent_id"] == flask_client_span["context"]["span_id"]
    (view_span,) = [s for s in by_service["django_app"] if s["name"] == "read session"]
    assert view_span["parent_id"] == django_server_span["context"]["span_id"]

    for service, before in zip(services, log_lines_before, strict=True):
        lines = service.log_lines()[before:]
        assert lines, f"{service.url} logged nothing for the request"
        assert all(" session=chat-43 " in line for line in lines), lines
    assert any("django_app: reading the session" in line for line in services[2].log_lines())


@pytest.mark.parametrize("headers", [{}, {SESSION_HEADER_NAME: "<script>"}], ids=["none", "bad"])
def test_generated_session_crosses_to_django(services: Services, headers: dict[str, str]) -> None:
    body = hop(services[0], "/hop/django", headers)
    generated = body["fastapi_app"]["session_id"]
    assert uuid.UUID(generated).version == 4
    assert body["flask_app"]["session_id"] == body["django_app"]["session_id"] == generated
    assert "<script>" not in str(body)


def test_django_example_under_gunicorn(services: Services) -> None:
    django_app = services[2]
    response = httpx.get(f"{django_app.url}/session", headers={SESSION_HEADER_NAME: "direct-2"})
    assert response.headers[SESSION_HEADER_NAME] == "direct-2"
    assert response.json() == {
        "service": "django_app",
        "session_id": "direct-2",
        "attributes": {"app": "chat-demo"},
        "received_header": "direct-2",
    }


def test_a_request_session_continues_in_the_celery_task_it_publishes(
    redis_url: str, tmp_path: Path
) -> None:
    """The `make demo` part three: `/task` publishes to the worker example on a real Redis."""
    broker = f"{redis_url}/3"
    with (
        example_services(tmp_path, broker_url=broker) as (fastapi_app, _, _),
        example_worker(tmp_path, broker) as worker,
    ):
        trace_id = secrets.token_hex(16)
        headers = {
            SESSION_HEADER_NAME: "chat-42",
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        }
        response = httpx.get(f"{fastapi_app.url}/task", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        (task_span,) = wait_for_spans(worker, trace_id)
        request_spans = wait_for_trace([fastapi_app], trace_id)
        # Without a header the middleware generates a session, and the task continues that one.
        generated = httpx.get(f"{fastapi_app.url}/task", timeout=10).json()["fastapi_app"]
        deadline = time.monotonic() + 30
        while len(summaries(worker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    (producer,) = [span for span in request_spans if span["kind"] == "SpanKind.PRODUCER"]
    assert task_span["name"] == "run/examples.worker.tasks.summarize"
    assert task_span["parent_id"] == producer["context"]["span_id"]
    assert task_span["attributes"]["session.id"] == "chat-42"
    assert producer["attributes"]["session.id"] == "chat-42"
    first, second = summaries(worker)
    assert first.endswith(" worker session=chat-42 worker: summarizing 19 characters")
    assert second.endswith(
        f" worker session={generated['session_id']} worker: summarizing 19 characters"
    )


def summaries(worker: ExampleService) -> list[str]:
    return [line for line in worker.log_lines() if "summarizing" in line]


def test_mcp_example_keeps_two_interleaved_conversations_apart(tmp_path: Path) -> None:
    """The `make demo` part five: one MCP connection, two conversations, each with its own id."""
    with mcp_example(tmp_path) as server:
        turns = asyncio.run(interleaved_conversations(f"{server.url}/mcp", turns=5))
        spans = wait_for_spans_named(server, "tools/call remember", 10)
    order = [turn.conversation for turn in turns]
    assert order != sorted(order), "the conversations interleaved"
    for name in CONVERSATIONS:
        mine = [turn for turn in turns if turn.conversation == name]
        assert [(t.tool_saw, t.notes) for t in mine] == [(name, n) for n in range(1, 6)]
    assert sorted(span["attributes"]["session.id"] for span in spans) == sorted(order)
    assert all(span["kind"] == "SpanKind.SERVER" for span in spans)
    kept = [line for line in server.log_lines() if " kept" in line]
    assert sorted(line.split(" session=")[1].split(" ")[0] for line in kept) == sorted(order)


def wait_for_spans_named(
    service: ExampleService, name: str, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(spans := [s for s in service.spans() if s["name"] == name]) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(spans)} of {count} spans named {name!r} were exported")
        time.sleep(0.05)
    return spans
