"""The Flask example with OpenTelemetry's WSGI middleware wrapped outside the session middleware.

The server span starts before the session; `WITHOUT_SERVER_SPAN_STAMPING=1` as in
`instrumented_fastapi`.
"""

from __future__ import annotations

import os
from types import MethodType

from flask import Flask
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from ops_session import SessionContext, WSGISessionMiddleware
from ops_session.otel import SessionSpanProcessor

if os.environ.get("WITHOUT_SERVER_SPAN_STAMPING"):

    def stamp_nothing(self: SessionSpanProcessor, session: SessionContext) -> None:
        pass

    SessionSpanProcessor.stamp_server_span = stamp_nothing  # type: ignore[method-assign]

from examples.flask_app.app import ATTRIBUTES, app  # noqa: E402 (after the switch above)

app.wsgi_app = OpenTelemetryMiddleware(  # type: ignore[method-assign]
    WSGISessionMiddleware(MethodType(Flask.wsgi_app, app), attributes=ATTRIBUTES)
)
