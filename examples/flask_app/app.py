"""A Flask service whose requests run in sessions that its spans and log lines carry.

Run from the repository root:

    .venv/bin/gunicorn examples.flask_app.app:app --bind 127.0.0.1:5001

`/hop` calls the Django example's `/session` (on port 5002, or `DJANGO_APP_URL`) with a
`requests.Session` hooked by `ops_session.requests.send_session`.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from typing import Any

import requests
from flask import Flask, request
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

import ops_session.requests
from ops_session import SESSION_HEADER_NAME, WSGISessionMiddleware, current_session
from ops_session.otel import SessionSpanProcessor

ATTRIBUTES = {"app": "chat-demo"}
DJANGO_APP_URL = os.environ.get("DJANGO_APP_URL", "http://127.0.0.1:5002")


# Telemetry: spans to $SPANS_FILE as JSON lines (standard output when unset), log lines to
# $LOG_FILE (standard error when unset), each stamped with the session. `make demo` reads both.
# With $OTLP_ENDPOINT set (such as Phoenix's http://127.0.0.1:6006/v1/traces), spans are also
# exported there over OTLP/HTTP.
LOG_FORMAT = "%(asctime)s {service} session=%(session_id)s %(name)s: %(message)s"


def setup_telemetry(service: str) -> None:
    """Install a tracer provider that stamps spans with the session, and a session log handler."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter()))
    if endpoint := os.environ.get("OTLP_ENDPOINT"):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
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


setup_telemetry("flask_app")
RequestsInstrumentor().instrument()
log = logging.getLogger("flask_app")
django_app = ops_session.requests.send_session(requests.Session())

app = Flask(__name__)
# Flask types wsgi_app as a method; replacing it is the documented way to add WSGI middleware.
# The session middleware wraps OpenTelemetry's, so the server span is started inside the session.
app.wsgi_app = WSGISessionMiddleware(  # type: ignore[method-assign]
    OpenTelemetryMiddleware(app.wsgi_app), attributes=ATTRIBUTES
)


def seen_here() -> dict[str, Any]:
    current = current_session()
    assert current is not None, "every request runs inside the middleware's session"
    return {
        "service": "flask_app",
        "session_id": current.id,
        "attributes": dict(current.attributes or {}),
        "received_header": request.headers.get(SESSION_HEADER_NAME),
    }


@app.get("/session")
def read_session() -> dict[str, Any]:
    """What this service sees of the session it is running in."""
    log.info("reading the session")
    return seen_here()


@app.get("/hop")
def hop() -> dict[str, Any]:
    """Call the Django example with a `requests.Session` that `send_session` hooked."""
    log.info("calling the Django example with requests")
    response = django_app.get(f"{DJANGO_APP_URL}/session", timeout=10)
    response.raise_for_status()
    return {"flask_app": seen_here(), "django_app": response.json()}
