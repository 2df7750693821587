"""A Celery worker whose tasks run in the session of the request that published them.

Run from the repository root, with Redis on 127.0.0.1:6379 (or `CELERY_BROKER_URL` set):

    .venv/bin/celery -A examples.worker.tasks worker --pool=solo

The FastAPI example's `/task` route publishes `summarize`. `propagate_sessions(app)` runs on
both sides, because both import this module: the request's session id travels in the message,
and the task's log line and span carry it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import Celery
from celery.signals import worker_init
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from ops_session import current_session
from ops_session.celery import propagate_sessions
from ops_session.logging import SessionLogFilter
from ops_session.otel import SessionSpanProcessor

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
LOG_FORMAT = "%(asctime)s worker session=%(session_id)s %(name)s: %(message)s"

app = Celery("worker", broker=BROKER_URL, backend=BROKER_URL)
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
# Before OpenTelemetry's Celery instrumentation, so the task's span starts inside the session.
propagate_sessions(app)
log = logging.getLogger("worker")


@worker_init.connect
def setup_telemetry(**kwargs: Any) -> None:
    """In the worker: spans to $SPANS_FILE as JSON lines, log lines to $LOG_FILE (or stdio)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "worker"}))
    provider.add_span_processor(SessionSpanProcessor())
    spans_file = os.environ.get("SPANS_FILE")
    out = open(spans_file, "a", buffering=1, encoding="utf-8") if spans_file else sys.stdout

    def one_line(span: ReadableSpan) -> str:
        return str(span.to_json(indent=None)) + "\n"

    provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=one_line))
    )
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    log_file = os.environ.get("LOG_FILE")
    handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler()
    )
    handler.addFilter(SessionLogFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


@app.task
def summarize(text: str) -> dict[str, Any]:
    """Stand-in for slow work (an LLM call): report the session the task ran in."""
    current = current_session()
    log.info("summarizing %d characters", len(text))
    return {"service": "worker", "session_id": current.id if current else None}
