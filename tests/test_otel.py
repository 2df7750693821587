from __future__ import annotations

import gc
import importlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import ops_session._span_attributes
from ops_session import SESSION_HEADER_NAME, SessionContext, session
from ops_session._core import add_request_listener, notify_request_started, request_listeners
from ops_session.otel import SessionPropagator, SessionSpanProcessor, extracted_session_id

from .conftest import Tracing


def build_tracing(**options: Any) -> Tracing:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SessionSpanProcessor(**options))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider, exporter)


@pytest.fixture(autouse=True)
def no_listener_leaks() -> Iterator[None]:
    assert not request_listeners
    yield
    assert not request_listeners, "a test left a SessionSpanProcessor registered"


def finished(exporter: InMemorySpanExporter) -> dict[str, dict[str, Any]]:
    return {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}


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
    spans = finished(exporter)
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


def test_the_opt_in_keys_are_written_only_when_asked() -> None:
    provider, exporter = build_tracing(langfuse_session_id=True, gen_ai_conversation_id=True)
    with session(id="keys-1"), provider.get_tracer("tests").start_as_current_span("span"):
        pass
    provider.shutdown()
    assert finished(exporter)["span"] == {
        "session.id": "keys-1",
        "mirascope.ops.session.id": "keys-1",
        "langfuse.session.id": "keys-1",
        "gen_ai.conversation.id": "keys-1",
    }


def test_attributes_become_span_attributes_under_a_prefix() -> None:
    provider, exporter = build_tracing(attribute_prefix="session.attributes.")
    attributes = {"user": "ada", "tags": ["a", "b"], "plan": {"tier": "pro"}, "none": None}
    with (
        session(id="flat-1", attributes=attributes),
        provider.get_tracer("tests").start_as_current_span("span"),
    ):
        pass
    provider.shutdown()
    assert finished(exporter)["span"] == {
        "session.id": "flat-1",
        "mirascope.ops.session.id": "flat-1",
        "mirascope.ops.session.attributes": (
            '{"user":"ada","tags":["a","b"],"plan":{"tier":"pro"},"none":null}'
        ),
        "session.attributes.user": "ada",
        "session.attributes.tags": ("a", "b"),
        "session.attributes.plan": '{"tier":"pro"}',
    }


def test_a_prefix_that_could_overwrite_the_id_is_refused_before_registering() -> None:
    with pytest.raises(ValueError, match="overwrite 'session.id'"):
        SessionSpanProcessor(attribute_prefix="session.")
    assert not request_listeners


@pytest.fixture
def langfuse_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops_session._span_attributes, "_warned_about_langfuse", False)


@pytest.mark.usefixtures("langfuse_warning")
def test_an_id_langfuse_would_drop_is_reported_once(
    tracing: Tracing, caplog: pytest.LogCaptureFixture
) -> None:
    # session() refuses non-ASCII ids; the rule for them is tested in test_span_attributes.
    first, detail = "x" * 201, "201 characters:"
    provider, exporter = tracing
    tracer = provider.get_tracer("tests")
    with caplog.at_level(logging.WARNING, logger="ops_session.otel"):
        for session_id in ["x" * 200, "plain", first, first, "y" * 300]:
            with session(id=session_id), tracer.start_as_current_span(session_id):
                pass
    assert [record.getMessage() for record in caplog.records] == [
        f"Session id of {detail} Langfuse ignores session ids over 200 characters or with "
        "non-ASCII characters, so it will not group these traces (Phoenix will). Use shorter "
        "ASCII ids to group them in Langfuse. This is logged once per process."
    ]
    assert finished(exporter)[first]["session.id"] == first


def test_the_stamps_of_many_sessions_stay_right(tracing: Tracing) -> None:
    """The processor keeps the attributes of recent sessions, and forgets them past a bound."""
    provider, exporter = tracing
    tracer = provider.get_tracer("tests")
    for number in range(600):
        attributes = {"n": number} if number % 2 else None
        with session(id=f"many-{number % 300}", attributes=attributes):
            with tracer.start_as_current_span(str(number)):
                pass
    spans = finished(exporter)
    assert len(spans) == 600
    for name, stamped in spans.items():
        number = int(name)
        assert stamped["session.id"] == f"many-{number % 300}"
        expected = f'{{"n":{number}}}' if number % 2 else None
        assert stamped.get("mirascope.ops.session.attributes") == expected


def test_spans_without_a_session_take_the_id_the_propagator_extracted(tracing: Tracing) -> None:
    """A worker or service without the middleware: only the id arrives, through the propagator."""
    provider, exporter = tracing
    tracer = provider.get_tracer("tests")
    received = SessionPropagator().extract({SESSION_HEADER_NAME: "propagated-1"})
    with tracer.start_as_current_span("consumer", context=received, kind=SpanKind.CONSUMER):
        # The instrumentations make only the span current, not the extracted context: the
        # children find the id on their parent span.
        assert extracted_session_id() is None
        with tracer.start_as_current_span("child"), tracer.start_as_current_span("grandchild"):
            pass
        with session(id="inner-1"), tracer.start_as_current_span("in-a-session"):
            pass
    with tracer.start_as_current_span("unrelated", context=SessionPropagator().extract({})):
        pass
    stamp = {"session.id": "propagated-1", "mirascope.ops.session.id": "propagated-1"}
    spans = finished(exporter)
    assert spans["consumer"] == spans["child"] == spans["grandchild"] == stamp
    assert spans["in-a-session"]["session.id"] == "inner-1"
    assert spans["unrelated"] == {}


def test_a_parent_span_with_a_foreign_session_value_is_not_followed(tracing: Tracing) -> None:
    provider, exporter = tracing
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("parent") as parent:
        parent.set_attribute("mirascope.ops.session.id", 42)
        with tracer.start_as_current_span("child"):
            pass
    assert finished(exporter)["child"] == {}


def listeners() -> list[Any]:
    """The registered request listeners themselves (the registry holds weak references)."""
    return [reference() for reference in request_listeners]


def test_the_request_listener_stamps_only_the_current_recording_server_span() -> None:
    provider, exporter = build_tracing(langfuse_session_id=True)
    tracer = provider.get_tracer("tests")
    context = SessionContext("listened-1", {"user": "ada"})
    with tracer.start_as_current_span("before", kind=SpanKind.SERVER):
        pass  # the processor listens from its first server span on
    (listener,) = listeners()
    listener(context)  # no span at all
    for kind in (SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.CLIENT):
        with tracer.start_as_current_span(kind.name, kind=kind):
            listener(context)
    ended = tracer.start_span("ended", kind=SpanKind.SERVER)
    ended.end()
    with trace.use_span(ended):
        listener(context)
    provider.shutdown()
    assert not request_listeners
    spans = finished(exporter)
    assert spans["SERVER"] == {
        "session.id": "listened-1",
        "mirascope.ops.session.id": "listened-1",
        "langfuse.session.id": "listened-1",
        "mirascope.ops.session.attributes": '{"user":"ada"}',
    }
    assert spans["INTERNAL"] == spans["CLIENT"] == spans["ended"] == spans["before"] == {}


def start_server_span(provider: TracerProvider) -> None:
    provider.get_tracer("tests").start_span("warm-up", kind=SpanKind.SERVER).end()


def test_each_processor_registers_one_listener_until_it_shuts_down() -> None:
    first, second = SessionSpanProcessor(), SessionSpanProcessor()
    assert not request_listeners  # constructing one registers nothing
    provider = TracerProvider()
    provider.add_span_processor(first)
    provider.add_span_processor(second)
    start_server_span(provider)
    start_server_span(provider)
    add_request_listener(first.stamp_server_span)  # a bound method equals its twin: no second
    assert listeners() == [first.stamp_server_span, second.stamp_server_span]
    first.shutdown()
    first.shutdown()
    assert listeners() == [second.stamp_server_span]
    second.shutdown()


def test_a_processor_added_again_after_shutdown_stamps_server_spans_again() -> None:
    processor = SessionSpanProcessor()
    old = TracerProvider()
    old.add_span_processor(processor)
    start_server_span(old)
    old.shutdown()
    assert not request_listeners
    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("request", kind=SpanKind.SERVER):
        notify_request_started(SessionContext("again-1"))
    provider.shutdown()
    assert finished(exporter)["request"]["session.id"] == "again-1"


def test_a_processor_dropped_without_shutdown_stops_listening() -> None:
    provider = TracerProvider(shutdown_on_exit=False)  # else atexit keeps it alive
    provider.add_span_processor(SessionSpanProcessor())
    start_server_span(provider)
    assert len(request_listeners) == 1
    del provider  # never shut down: nothing but the registry could keep the processor alive
    gc.collect()
    assert not request_listeners
    notify_request_started(SessionContext("nobody-1"))  # and no dead listener is called


def test_a_processor_stamps_only_its_own_providers_server_spans() -> None:
    ours, ours_exporter = build_tracing()
    theirs, theirs_exporter = build_tracing(langfuse_session_id=True, attribute_prefix="s.")
    start_server_span(theirs)  # both processors listen now
    start_server_span(ours)
    with ours.get_tracer("tests").start_as_current_span("request", kind=SpanKind.SERVER):
        notify_request_started(SessionContext("own-1", {"user": "ada"}))
    ours.shutdown()
    theirs.shutdown()
    assert finished(ours_exporter)["request"] == {
        "session.id": "own-1",
        "mirascope.ops.session.id": "own-1",
        "mirascope.ops.session.attributes": '{"user":"ada"}',
    }  # no langfuse.session.id nor s.user from the other provider's processor
    assert "request" not in finished(theirs_exporter)


def test_attributes_a_span_was_started_with_are_kept(tracing: Tracing) -> None:
    provider, exporter = tracing
    tracer = provider.get_tracer("tests")
    with session(id="ours-1"):
        with tracer.start_as_current_span("own", attributes={"session.id": "theirs-1"}):
            pass
        with tracer.start_as_current_span("plain", attributes={"other": 1}):
            pass
    spans = finished(exporter)
    assert spans["own"] == {"session.id": "theirs-1", "mirascope.ops.session.id": "ours-1"}
    assert spans["plain"] == {
        "other": 1,
        "session.id": "ours-1",
        "mirascope.ops.session.id": "ours-1",
    }


def test_importing_the_integration_registers_nothing() -> None:
    """Without a processor the middlewares call no listener: OpenTelemetry costs them nothing."""
    code = (
        "import ops_session.otel, ops_session.asgi, ops_session.wsgi\n"
        "from ops_session._core import request_listeners\n"
        "print(len(request_listeners))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "0"


def test_propagator_is_registered_under_the_opentelemetry_entry_point() -> None:
    (entry_point,) = entry_points(group="opentelemetry_propagator", name="ops_session")
    assert entry_point.load() is SessionPropagator


def test_missing_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    monkeypatch.delitem(sys.modules, "ops_session.otel")
    with pytest.raises(ImportError, match=r"install 'ops-session\[otel\]'"):
        importlib.import_module("ops_session.otel")
