"""OpenTelemetry for the Django example: spans stamped with the session, as JSON lines.

Spans go to $SPANS_FILE (standard output when unset). `DjangoInstrumentor` puts its middleware
first in `MIDDLEWARE`; the session middleware is then moved above it, so that the server span,
too, starts inside the session (as in the Flask and FastAPI examples).
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from ops_session.otel import SessionSpanProcessor

SESSION_MIDDLEWARE = "ops_session.django.SessionMiddleware"


def setup_telemetry(service: str) -> None:
    """Install a tracer provider that stamps spans with the session, and instrument Django."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    settings.MIDDLEWARE.remove(SESSION_MIDDLEWARE)
    settings.MIDDLEWARE.insert(0, SESSION_MIDDLEWARE)


def _json_lines_exporter() -> ConsoleSpanExporter:
    spans_file = os.environ.get("SPANS_FILE")
    out = open(spans_file, "a", buffering=1, encoding="utf-8") if spans_file else sys.stdout

    def one_line(span: ReadableSpan) -> str:
        return str(span.to_json(indent=None)) + "\n"

    return ConsoleSpanExporter(out=out, formatter=one_line)
