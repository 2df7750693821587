"""The Django example's view: what this service sees of the session it runs in."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from opentelemetry import trace

from ops_session import SESSION_HEADER_NAME, current_session

log = logging.getLogger("django_app")
tracer = trace.get_tracer("django_app")


def read_session(request: HttpRequest) -> JsonResponse:
    """What this service sees of the session it is running in."""
    with tracer.start_as_current_span("read session"):
        log.info("reading the session")
        current = current_session()
        assert current is not None, "every request runs inside the middleware's session"
        return JsonResponse(
            {
                "service": "django_app",
                "session_id": current.id,
                "attributes": dict(current.attributes or {}),
                "received_header": request.headers.get(SESSION_HEADER_NAME),
            }
        )
