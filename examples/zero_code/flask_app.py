"""A Flask service with no ops-session setup at all: `opentelemetry-instrument` adds it.

    OTEL_TRACES_EXPORTER=console OTEL_METRICS_EXPORTER=none \
    OTEL_PROPAGATORS=tracecontext,baggage,ops_session \
        opentelemetry-instrument gunicorn examples.zero_code.flask_app:app --bind 127.0.0.1:5001
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request

from ops_session import SESSION_HEADER_NAME, current_session

app = Flask(__name__)
log = logging.getLogger("zero_code.flask_app")


@app.get("/session")
def read_session() -> dict[str, Any]:
    """What this service sees of the session it is running in."""
    log.warning("reading the session")
    current = current_session()
    return {
        "service": "flask_app",
        "session_id": current.id if current else None,
        "received_header": request.headers.get(SESSION_HEADER_NAME),
    }
