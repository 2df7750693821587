"""Run Mirascope's `@trace` and `span` in a session and print the spans as JSON.

A child process of `tests/test_mirascope.py`: Mirascope's spans use OpenTelemetry's global tracer
provider, which a process sets once, so the test process never sets it. The argument names who
opens the session: `ops-session-opens` (and no ops-session processor, so every session key comes
from Mirascope's own code) or `mirascope-opens` (with `SessionSpanProcessor` first).
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager

from mirascope import ops
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ops_session
from ops_session.otel import SessionSpanProcessor


@ops.trace
def answer(question: str) -> str:
    with ops.span("lookup"):
        return question.upper()


def main(scenario: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    opened: AbstractContextManager[object]
    if scenario == "mirascope-opens":
        provider.add_span_processor(SessionSpanProcessor())
        opened = ops.session(id="script-7")
    else:
        opened = ops_session.session(id="chat-42", attributes={"user": "ada"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ops.configure(tracer_provider=provider)
    with opened:
        answer("hello")
    spans = [
        {"name": span.name, "attributes": dict(span.attributes or {})}
        for span in exporter.get_finished_spans()
    ]
    print(json.dumps(spans))


if __name__ == "__main__":
    main(sys.argv[1])
