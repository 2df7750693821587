"""A real tracing backend groups one conversation's traces: Arize Phoenix, fed by both examples.

Phoenix runs from its own virtualenv (`make phoenix-venv`) on loopback ports, with an empty SQLite
database in a temporary directory; both example services export to it over OTLP/HTTP. A
conversation is several requests with one session id, some crossing the hop to Flask. Phoenix's
REST API must then list every turn's trace under that session, and the root server span of each
trace (what Phoenix reads a turn's input and output from) must carry `session.id`.

The turns' trace ids come from the services' own span files, not from Phoenix, so a trace that
Phoenix files elsewhere is noticed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tools.demo_phoenix import CHAT, phoenix_demo
from tools.example_services import (
    DEMO_PROPAGATORS,
    FASTAPI_APP,
    FLASK_APP,
    ExampleService,
    example_services,
    wait_for_trace,
)
from tools.phoenix import Phoenix, wait_for
from tools.phoenix_screenshot import rendered_page

from ops_session import SESSION_HEADER_NAME

pytestmark = pytest.mark.servers

Services = tuple[ExampleService, ExampleService, ExampleService]
HOOKED_TURNS = ["/session", "/hop", "/hop/requests", "/session", "/hop/httpx-sync"]
INSTRUMENTED = (
    "tests.live.apps.instrumented_fastapi:app",
    "tests.live.apps.instrumented_flask:app",
)
VARIANTS: dict[str, dict[str, Any]] = {
    # Ours outside OpenTelemetry's middleware: the server span starts inside the session.
    "session-middleware-outside": {"targets": (FASTAPI_APP, FLASK_APP)},
    # FastAPIInstrumentor, and OpenTelemetry's WSGI middleware outside ours: the server span
    # starts before the session, and only the processor's request listener stamps it.
    "opentelemetry-outside": {"targets": INSTRUMENTED},
    # The same without that listener, and without the ops_session propagator (whose extracted
    # id would stamp the server span as well): what the root span misses without the work.
    "opentelemetry-outside-without-stamping": {
        "targets": INSTRUMENTED,
        "propagators": "tracecontext,baggage",
        "env": {"WITHOUT_SERVER_SPAN_STAMPING": "1"},
    },
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def services(
    request: pytest.FixtureRequest, phoenix: Phoenix, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    variant = VARIANTS[request.param]
    fastapi_target, flask_target = variant["targets"]
    with example_services(
        tmp_path_factory.mktemp("telemetry"),
        propagators=variant.get("propagators", DEMO_PROPAGATORS),
        otlp_endpoint=phoenix.traces_endpoint,
        fastapi_app_target=fastapi_target,
        flask_app_target=flask_target,
        env=variant.get("env"),
    ) as started:
        yield started


@pytest.fixture
def stamped(request: pytest.FixtureRequest) -> bool:
    """Whether this variant stamps the server span (only the last one does not)."""
    return "without-stamping" not in request.node.callspec.id


def send_turn(services: Services, path: str, session_id: str | None) -> tuple[str, str]:
    """One request to the FastAPI example; the session id it answered with, and its trace id."""
    fastapi_app, flask_app, _ = services
    marker = secrets.token_hex(8)  # finds this request's server span in the span file
    headers = {SESSION_HEADER_NAME: session_id} if session_id else {}
    response = httpx.get(f"{fastapi_app.url}{path}?turn={marker}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    trace_id = wait_for(
        lambda: next(
            (
                span["context"]["trace_id"][2:]
                for span in fastapi_app.spans()
                if span["kind"] == "SpanKind.SERVER"
                and any(marker in str(value) for value in span["attributes"].values())
            ),
            None,
        ),
        what=f"the server span of {path}",
    )
    wait_for_trace([fastapi_app, flask_app] if "/hop" in path else [fastapi_app], trace_id)
    return response.headers[SESSION_HEADER_NAME], trace_id


def exported_spans(services: Services, trace_id: str) -> list[dict[str, Any]]:
    """The spans of a trace as the services wrote them to their span files."""
    return [
        span
        for service in services
        for span in service.spans()
        if span["context"]["trace_id"] == f"0x{trace_id}"
    ]


def stored_trace(phoenix: Phoenix, services: Services, trace_id: str) -> list[dict[str, Any]]:
    """Every span of a trace once Phoenix has ingested all that the services exported."""
    expected = len(exported_spans(services, trace_id))
    return list(
        wait_for(
            lambda: (spans := phoenix.spans(trace_id)) and len(spans) == expected and spans,
            what=f"all {expected} spans of trace {trace_id}",
        )
    )


def server_span_ids(services: Services, trace_id: str) -> set[str]:
    """The ids of a trace's server spans (Phoenix does not keep the OpenTelemetry span kind)."""
    return {
        span["context"]["span_id"][2:]
        for span in exported_spans(services, trace_id)
        if span["kind"] == "SpanKind.SERVER"
    }


def stored_session(phoenix: Phoenix, session_id: str, trace_ids: set[str]) -> dict[str, Any]:
    """Phoenix's session once it lists at least `trace_ids` (ingestion is batched)."""
    return dict(
        wait_for(
            lambda: (
                (found := phoenix.session(session_id))
                and trace_ids <= {trace["trace_id"] for trace in found["traces"]}
                and found
            ),
            what=f"session {session_id} with {len(trace_ids)} traces",
        )
    )


def test_a_conversation_is_one_session_with_every_turn_in_it(
    phoenix: Phoenix, services: Services, stamped: bool
) -> None:
    conversation = f"conversation-{secrets.token_hex(6)}"
    turns = HOOKED_TURNS + (["/hop/propagator"] if stamped else [])
    trace_ids = []
    for path in turns:
        answered, trace_id = send_turn(services, path, conversation)
        assert answered == conversation
        trace_ids.append(trace_id)
    assert len(set(trace_ids)) == len(turns)

    found = stored_session(phoenix, conversation, set(trace_ids))
    assert sorted(trace["trace_id"] for trace in found["traces"]) == sorted(trace_ids)
    assert phoenix.session_page(found).startswith(f"{phoenix.url}/projects/")

    for trace_id, path in zip(trace_ids, turns, strict=True):
        spans = stored_trace(phoenix, services, trace_id)
        (root,) = [span for span in spans if span["parent_id"] is None]
        servers = server_span_ids(services, trace_id)
        assert root["context"]["span_id"] in servers
        assert len(servers) == (2 if "/hop" in path else 1)
        missing = {
            span["context"]["span_id"]
            for span in spans
            if span["attributes"].get("session.id") != conversation
        }
        # Without the stamping, exactly the server spans (the root, and Flask's after a hop) miss
        # the session; every span below them still has it.
        assert missing == (set() if stamped else servers)
        if stamped:
            assert root["attributes"]["mirascope.ops.session.id"] == conversation
            assert root["attributes"]["mirascope.ops.session.attributes"] == '{"app":"chat-demo"}'


def test_a_request_without_a_header_makes_its_own_session(
    phoenix: Phoenix, services: Services, stamped: bool
) -> None:
    conversation = f"conversation-{secrets.token_hex(6)}"
    _, in_conversation = send_turn(services, "/hop", conversation)
    generated, alone = send_turn(services, "/hop", None)
    assert generated != conversation

    found = stored_session(phoenix, generated, {alone})
    assert [trace["trace_id"] for trace in found["traces"]] == [alone]
    conversation_traces = stored_session(phoenix, conversation, {in_conversation})["traces"]
    assert [trace["trace_id"] for trace in conversation_traces] == [in_conversation]
    (root,) = [s for s in stored_trace(phoenix, services, alone) if s["parent_id"] is None]
    assert root["attributes"].get("session.id") == (generated if stamped else None)


def test_phoenix_shows_the_demo_session_and_its_turns_in_a_browser(phoenix: Phoenix) -> None:
    """Headless Chromium renders the page `make demo-phoenix` prints, as a person opens it."""
    with phoenix_demo(phoenix) as demo:
        dom = rendered_page(demo.page)
    assert demo.session_id in dom
    assert len(demo.trace_ids) == len(CHAT)
    for trace_id in demo.trace_ids:
        assert trace_id in dom
    assert f"Turn {len(CHAT):02}" in dom and f"Turn {len(CHAT) + 1:02}" not in dom
    # Each turn shows what the user said and what the model answered.
    for message, reply in zip(CHAT, demo.replies, strict=True):
        assert f">{message}<" in dom and reply in dom
