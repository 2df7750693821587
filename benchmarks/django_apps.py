"""The Django configurations: a minimal Django view, bare and behind each session middleware.

Django's settings are global to a process, so this module configures them once (when nothing
configured them before) and builds one `WSGIHandler` per configuration, each loading its own
`MIDDLEWARE` while `override_settings` holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path

from ops_session import SESSION_HEADER_NAME, SessionContext, generate_session_id

from .asgi_apps import VALID_ID
from .required import (
    SESSION_VARIABLE,
    new_instance,
    set_session_attributes,
    set_session_id,
    valid_id,
)
from .wsgi_apps import STREAMED_CHUNKS, WSGIApp, environ


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def index_with_session_header(request: HttpRequest) -> HttpResponse:
    """The view, but answering with the session header itself: what writing it costs."""
    response = HttpResponse("ok")
    response[SESSION_HEADER_NAME] = VALID_ID
    return response


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        for _ in range(STREAMED_CHUNKS):
            yield b"chunk\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


# The view writing the header comes first, so that it is not the one paying for a failed match.
HEADER_PATH = "/with-header"
urlpatterns = [
    path(HEADER_PATH.lstrip("/"), index_with_session_header),
    path("", index),
    path("stream", stream),
]

if not settings.configured:
    settings.configure(
        SECRET_KEY="benchmarks-only",
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django_guid"],
        DATABASES={},
        USE_TZ=True,
        TIME_ZONE="UTC",
        LOGGING_CONFIG=None,
        DJANGO_GUID={"GUID_HEADER_NAME": "X-Request-ID"},
    )
    django.setup()


class PassThroughMiddleware:
    """The least a Django session middleware does: make a value current around the view.

    It sets a ContextVar before `get_response` and resets it after, reading no header and adding
    none: over the view that writes the session header, the floor under any such middleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = SESSION_VARIABLE.set(request)
        try:
            return self.get_response(request)
        finally:
            SESSION_VARIABLE.reset(token)


_META_KEY = "HTTP_" + SESSION_HEADER_NAME.upper().replace("-", "_")


class RequiredStepsMiddleware:
    """Every step a Django middleware with ops-session's behaviour must take, inline, and no more.

    It reads the session header from `request.META`, checks the id with the default validator's
    regex (generating one when it is missing or invalid), builds the frozen `SessionContext`
    through its slots' setters, makes it current around the view, and adds the header to the
    response unless the view set its own. The view does not stream, so a streamed body's
    session is left out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get(_META_KEY)
        session_id = incoming if incoming and valid_id(incoming) else generate_session_id()
        context = new_instance(SessionContext)
        set_session_id(context, session_id)
        set_session_attributes(context, None)
        token = SESSION_VARIABLE.set(context)
        try:
            response = self.get_response(request)
        finally:
            SESSION_VARIABLE.reset(token)
        if not response.has_header(SESSION_HEADER_NAME):
            response[SESSION_HEADER_NAME] = session_id
        return response


OPS_SESSION = "ops_session.django.SessionMiddleware"
DJANGO_GUID = "django_guid.middleware.guid_middleware"
PASS_THROUGH = f"{__name__}.PassThroughMiddleware"
REQUIRED_STEPS = f"{__name__}.RequiredStepsMiddleware"


def handler(*middleware: str) -> WSGIHandler:
    with override_settings(MIDDLEWARE=list(middleware)):
        return WSGIHandler()


bare_django = handler()
ops_session_django = handler(OPS_SESSION)
django_guid_django = handler(DJANGO_GUID)
pass_through_django = handler(PASS_THROUGH)
required_steps_django = handler(REQUIRED_STEPS)


def configurations() -> dict[str, tuple[WSGIApp, dict[str, Any]]]:
    """Name -> (app, environ). The first entry is the bare app."""
    guid_environ = environ()
    guid_environ["HTTP_X_REQUEST_ID"] = VALID_ID
    return {
        "bare Django": (bare_django, environ(session_id=VALID_ID)),
        "ops-session, valid id": (ops_session_django, environ(session_id=VALID_ID)),
        "ops-session, generated id": (ops_session_django, environ()),
        "django-guid": (django_guid_django, guid_environ),
        "bare Django, 10-chunk stream": (bare_django, environ("/stream", VALID_ID)),
        "ops-session, 10-chunk stream": (ops_session_django, environ("/stream", VALID_ID)),
    }
