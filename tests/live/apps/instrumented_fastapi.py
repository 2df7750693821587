"""The FastAPI example as `FastAPIInstrumentor.instrument_app` users build it.

The instrumentor puts OpenTelemetry's middleware outside every `add_middleware` layer, so the
server span starts before the session middleware makes the request's session current. With
`WITHOUT_SERVER_SPAN_STAMPING=1` the processor's request listener does nothing: what the server
span misses without it.
"""

from __future__ import annotations

import os
from typing import Any, cast

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from ops_session import SessionContext
from ops_session.otel import SessionSpanProcessor

if os.environ.get("WITHOUT_SERVER_SPAN_STAMPING"):

    def stamp_nothing(self: SessionSpanProcessor, session: SessionContext) -> None:
        pass

    SessionSpanProcessor.stamp_server_span = stamp_nothing  # type: ignore[method-assign]

from examples.fastapi_app.app import app  # noqa: E402 (after the switch above)

app.user_middleware = [
    entry for entry in app.user_middleware if entry.cls is not cast(Any, OpenTelemetryMiddleware)
]
FastAPIInstrumentor.instrument_app(app)
