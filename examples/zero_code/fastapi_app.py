"""A FastAPI service with no ops-session setup at all: `opentelemetry-instrument` adds it.

    OTEL_TRACES_EXPORTER=console OTEL_METRICS_EXPORTER=none \
    OTEL_PROPAGATORS=tracecontext,baggage,ops_session OPS_SESSION_OUTGOING_HOSTS=127.0.0.1 \
        opentelemetry-instrument uvicorn examples.zero_code.fastapi_app:app --port 5000

The handlers only read the session; the middleware, the span processor, the log fields and the
outgoing header all come from the instrumentation.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
from fastapi import FastAPI

from ops_session import current_session

FLASK_APP_URL = os.environ.get("FLASK_APP_URL", "http://127.0.0.1:5001")

app = FastAPI()
log = logging.getLogger("zero_code.fastapi_app")


def seen_here() -> dict[str, Any]:
    current = current_session()
    return {"service": "fastapi_app", "session_id": current.id if current else None}


@app.get("/session")
async def read_session() -> dict[str, Any]:
    """What this service sees of the session it is running in."""
    log.warning("reading the session")
    return seen_here()


@app.get("/hop")
def hop() -> dict[str, Any]:
    """Call the Flask service with a plain httpx client."""
    log.warning("calling the Flask service")
    with httpx.Client(base_url=FLASK_APP_URL, timeout=10) as client:
        flask_app = client.get("/session").raise_for_status().json()
    return {"fastapi_app": seen_here(), "flask_app": flask_app}
