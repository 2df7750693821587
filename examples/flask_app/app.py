"""A Flask service whose requests run in sessions that its spans and log lines carry.

Run from the repository root:

    .venv/bin/gunicorn examples.flask_app.app:app --bind 127.0.0.1:5001
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from examples.telemetry import setup_telemetry
from ops_session import SESSION_HEADER_NAME, WSGISessionMiddleware, current_session

ATTRIBUTES = {"app": "chat-demo"}

setup_telemetry("flask_app")
log = logging.getLogger("flask_app")

app = Flask(__name__)
# Flask types wsgi_app as a method; replacing it is the documented way to add WSGI middleware.
# The session middleware wraps OpenTelemetry's, so the server span is started inside the session.
app.wsgi_app = WSGISessionMiddleware(  # type: ignore[method-assign]
    OpenTelemetryMiddleware(app.wsgi_app), attributes=ATTRIBUTES
)


@app.get("/session")
def read_session() -> dict[str, Any]:
    """What this service sees of the session it is running in."""
    log.info("reading the session")
    current = current_session()
    assert current is not None, "every request runs inside the middleware's session"
    return {
        "service": "flask_app",
        "session_id": current.id,
        "attributes": dict(current.attributes or {}),
        "received_header": request.headers.get(SESSION_HEADER_NAME),
    }
