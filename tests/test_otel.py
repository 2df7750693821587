from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from opentelemetry.context import Context

from ops_session import SESSION_HEADER_NAME, session
from ops_session.otel import SessionPropagator, SessionSpanProcessor, extracted_session_id

from .conftest import Tracing
from .support.echo_server import echo_server


def test_spans_inside_a_session_carry_it(tracing: Tracing) -> None:
    provider, exporter = tracing
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("outside"):
        pass
    with session(id="sp-1", attributes={"user": "ada", "tags": ["a"], "m": {"k": 1}}):
        with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child"):
            pass
    with session(id="sp-2"), tracer.start_as_current_span("bare"):
        pass
    spans = {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}
    assert spans["outside"] == {}
    expected = {
        "session.id": "sp-1",
        "mirascope.ops.session.id": "sp-1",
        "mirascope.ops.session.attributes": '{"user":"ada","tags":["a"],"m":{"k":1}}',
    }
    assert spans["parent"] == expected and spans["child"] == expected
    assert json.loads(str(expected["mirascope.ops.session.attributes"]))["m"] == {"k": 1}
    assert spans["bare"] == {"session.id": "sp-2", "mirascope.ops.session.id": "sp-2"}
    processor = SessionSpanProcessor()
    assert processor.force_flush() is True
    processor.shutdown()


def test_propagator_injects_the_current_session() -> None:
    propagator = SessionPropagator()
    carrier: dict[str, str] = {}
    propagator.inject(carrier)
    assert carrier == {}
    with session(id="pr-1"):
        propagator.inject(carrier)
    assert carrier == {SESSION_HEADER_NAME: "pr-1"}
    assert propagator.fields == {SESSION_HEADER_NAME}


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        pytest.param({SESSION_HEADER_NAME: "in-1"}, "in-1", id="canonical"),
        pytest.param({"mirascope-session-id": "in-2"}, "in-2", id="lower"),
        pytest.param({"mirascope-session-id": "a b"}, None, id="invalid"),
        pytest.param({}, None, id="missing"),
    ],
)
def test_propagator_extracts_a_valid_id(carrier: dict[str, str], expected: str | None) -> None:
    propagator = SessionPropagator()
    context = propagator.extract(carrier)
    assert isinstance(context, Context)
    assert extracted_session_id(context) == expected
    forwarded: dict[str, str] = {}
    propagator.inject(forwarded, context)
    assert forwarded == ({SESSION_HEADER_NAME: expected} if expected else {})


def test_propagator_is_registered_under_the_opentelemetry_entry_point() -> None:
    (entry_point,) = entry_points(group="opentelemetry_propagator", name="ops_session")
    assert entry_point.load() is SessionPropagator


def test_missing_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    monkeypatch.delitem(sys.modules, "ops_session.otel")
    with pytest.raises(ImportError, match=r"install 'ops-session\[otel\]'"):
        importlib.import_module("ops_session.otel")


@pytest.mark.parametrize(
    ("propagators", "expected"),
    [
        pytest.param("tracecontext,baggage,ops_session", "otel-prop-1", id="selected"),
        pytest.param("tracecontext,baggage", "(none)", id="not-selected"),
    ],
)
def test_otel_propagators_env_makes_instrumented_clients_send_the_header(
    propagators: str, expected: str
) -> None:
    with echo_server() as url:
        completed = subprocess.run(
            [sys.executable, "-m", "tests.live.propagation_client", url],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "OTEL_PROPAGATORS": propagators},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    assert json.loads(completed.stdout) == {
        "httpx": expected,
        "httpx-async": expected,
        "requests": expected,
        "outside": "(none)",
    }


@pytest.mark.parametrize(
    "carrier",
    [
        pytest.param({"Mirascope-Session-Id": "caller-1"}, id="canonical"),
        pytest.param({"mirascope-session-id": "caller-1"}, id="lower-case"),
        pytest.param({"MIRASCOPE-SESSION-ID": "caller-1"}, id="upper-case"),
    ],
)
def test_propagator_keeps_a_header_the_caller_set(carrier: dict[str, str]) -> None:
    expected = dict(carrier)
    with session(id="current-1"):
        SessionPropagator().inject(carrier)
    assert carrier == expected


@pytest.mark.parametrize(
    "name",
    [
        "Mirascope-Session-Id",
        "mirascope-session-id",
        "MIRASCOPE-SESSION-ID",
        "mIrAsCoPe-SeSsIoN-iD",
    ],
)
def test_propagator_extracts_the_header_in_any_case(name: str) -> None:
    context = SessionPropagator().extract({"traceparent": "-", name: "any-case-1"})
    assert extracted_session_id(context) == "any-case-1"
