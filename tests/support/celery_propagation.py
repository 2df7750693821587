"""Run as a script with OTEL_PROPAGATORS set: publish Celery tasks through OpenTelemetry alone.

OpenTelemetry's Celery instrumentation injects the propagators into each message's headers;
nothing here calls `propagate_sessions`, so only the `ops_session` propagator (loaded from its
entry point) can put the session id there. Kombu's in-memory transport is the broker: the
script reads back the messages it published and prints the session header of each.
"""

from __future__ import annotations

import json

from celery import Celery
from opentelemetry.instrumentation.celery import CeleryInstrumentor

from ops_session import SESSION_HEADER_NAME, session


def published_ids() -> dict[str, object]:
    app = Celery("otel-only", broker="memory://", backend="cache+memory://")
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    with app.connection() as connection:
        queue = connection.SimpleQueue("celery")
        with session(id="celery-otel-1"):
            app.send_task("tasks.summarize", args=(1,), connection=connection)
        app.send_task("tasks.summarize", args=(2,), connection=connection)
        seen = []
        for _ in range(2):
            message = queue.get(timeout=5)
            seen.append(message.headers.get(SESSION_HEADER_NAME))
            message.ack()
        queue.close()
    return {"inside": seen[0], "outside": seen[1]}


if __name__ == "__main__":
    print(json.dumps(published_ids()))
