"""The Celery app the job tests run under a real worker, on the Redis named by `REDIS_URL`.

Every task returns what it saw (through the Redis result backend) and writes one log line through
`SessionLogFilter` to `LOG_FILE`; the worker exports its spans to `SPANS_FILE` as JSON lines, with
OpenTelemetry's Celery instrumentation and `SessionSpanProcessor`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, Task
from celery.signals import worker_init
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from ops_session import current_session
from ops_session.celery import propagate_sessions
from ops_session.logging import SessionLogFilter
from ops_session.otel import SessionSpanProcessor

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LOG_FORMAT = "session=%(session_id)s pid=%(process)d %(message)s"

app = Celery("jobs", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_acks_late=False,
    worker_prefetch_multiplier=4,
    worker_hijack_root_logger=False,
    result_expires=600,
)
# Before the instrumentation connects its own handlers, so the task span starts in the session.
propagate_sessions(app, generate=os.environ.get("GENERATE_SESSIONS") == "1")
log = logging.getLogger("jobs")


@worker_init.connect
def set_up_telemetry(**kwargs: Any) -> None:
    """In the worker only: spans to `SPANS_FILE`, log lines to `LOG_FILE`, both with the session."""
    provider = TracerProvider()
    provider.add_span_processor(SessionSpanProcessor())
    spans = open(os.environ["SPANS_FILE"], "a", buffering=1, encoding="utf-8")

    def one_line(span: ReadableSpan) -> str:
        return str(span.to_json(indent=None)) + "\n"

    provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=spans, formatter=one_line))
    )
    CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    handler = logging.FileHandler(os.environ["LOG_FILE"], encoding="utf-8")
    handler.addFilter(SessionLogFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def seen_here(label: str, **extra: Any) -> dict[str, Any]:
    current = current_session()
    log.info("task ran label=%s", label)
    return {
        "label": label,
        "session_id": current.id if current else None,
        "pid": os.getpid(),
        **extra,
    }


@app.task
def seen(label: str) -> dict[str, Any]:
    return seen_here(label)


@app.task
def seen_after(previous: Any, label: str) -> list[Any]:
    """A chain link or chord body: what came before, then what this task saw."""
    before = previous if isinstance(previous, list) else [previous]
    return [*before, seen_here(label)]


@app.task(bind=True, max_retries=3, default_retry_delay=0)
def retry_explicitly(self: Task[Any, Any], label: str) -> dict[str, Any]:
    current = current_session()
    if self.request.retries < 2:
        log.info("retrying label=%s", label)
        raise self.retry(countdown=0)
    return seen_here(label, retries=self.request.retries, first_seen=current and current.id)


class Flaky(Exception):
    pass


@app.task(bind=True, autoretry_for=(Flaky,), max_retries=3, default_retry_delay=0)
def retry_automatically(self: Task[Any, Any], label: str) -> dict[str, Any]:
    if self.request.retries < 2:
        raise Flaky(label)
    return seen_here(label, retries=self.request.retries)


@app.task
def publish_child(label: str, queue: str) -> str:
    """Publish another task from inside this one; return its id for the test to wait on."""
    seen_here(label)
    return str(seen.apply_async((f"{label}/child",), queue=queue).id)
