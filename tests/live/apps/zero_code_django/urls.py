from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.urls import path

from ops_session import current_session

log = logging.getLogger("zero_code.django_app")


def read_session(request: HttpRequest) -> JsonResponse:
    log.warning("reading the session")
    current = current_session()
    return JsonResponse({"service": "django_app", "session_id": current.id if current else None})


urlpatterns = [path("session", read_session)]
