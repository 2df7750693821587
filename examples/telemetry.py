"""OpenTelemetry and logging for the example services, so every span and log line has the session.

Spans go to `$SPANS_FILE` as one JSON object per line (standard output when unset), log lines to
`$LOG_FILE` (standard error when unset). `make demo` reads both files of both services.
"""

from __future__ import annotations

import logging.config
import os
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from ops_session.otel import SessionSpanProcessor

LOG_FORMAT = "%(asctime)s {service} session=%(session_id)s %(name)s: %(message)s"


def setup_telemetry(service: str) -> None:
    """Install a tracer provider that stamps spans with the session, and a session log handler."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter()))
    trace.set_tracer_provider(provider)
    logging.config.dictConfig(_logging_config(service))


def _json_lines_exporter() -> ConsoleSpanExporter:
    spans_file = os.environ.get("SPANS_FILE")
    out = open(spans_file, "a", buffering=1, encoding="utf-8") if spans_file else sys.stdout

    def one_line(span: ReadableSpan) -> str:
        return str(span.to_json(indent=None)) + "\n"

    return ConsoleSpanExporter(out=out, formatter=one_line)


def _logging_config(service: str) -> dict[str, Any]:
    log_file = os.environ.get("LOG_FILE")
    handler: dict[str, Any] = (
        {"class": "logging.FileHandler", "filename": log_file, "encoding": "utf-8"}
        if log_file
        else {"class": "logging.StreamHandler"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"session": {"()": "ops_session.logging.SessionLogFilter"}},
        "formatters": {"session": {"format": LOG_FORMAT.format(service=service)}},
        "handlers": {"session": {**handler, "filters": ["session"], "formatter": "session"}},
        "root": {"level": "INFO", "handlers": ["session"]},
    }
