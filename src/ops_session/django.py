"""Django: a `MIDDLEWARE` entry that runs each request, and its streamed body, in a session.

Configured by one optional setting, `OPS_SESSION`, a dict of the options the ASGI and WSGI
middlewares take (`SessionOptions`), with the same defaults and meaning. `manage.py check`
checks it when `OpsSessionConfig` is in `INSTALLED_APPS`.  [extra: django]
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeAlias

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.apps import AppConfig
    from django.conf import settings
    from django.core import checks
    from django.core.exceptions import ImproperlyConfigured
    from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
    from django.http.response import HttpResponseBase
    from django.utils.cache import patch_vary_headers
except ImportError as error:
    raise ImportError("ops_session.django needs Django: install 'ops-session[django]'.") from error

from ._core import (
    SessionContext,
    activate,
    deactivate,
    notify_request_started,
    request_listeners,
)
from ._policy import FROM_QUERY, SessionPolicy

__all__ = [
    "SETTING",
    "OpsSessionConfig",
    "SessionMiddleware",
    "check_settings",
    "policy_from_settings",
]

SETTING = "OPS_SESSION"
"""The name of the Django setting that configures `SessionMiddleware`."""

GetResponse: TypeAlias = Callable[[HttpRequest], Any]


class _RequestReader:
    """Reads the other places an id may come from in a Django request (see `also_accept`)."""

    __slots__ = ()

    def header(self, request: HttpRequest, name: str) -> str | None:
        value: str | None = request.META.get("HTTP_" + name.upper().replace("-", "_"))
        return value

    def query_string(self, request: HttpRequest) -> str:
        query_string: str = request.META.get("QUERY_STRING", "")
        return query_string

    def cookie_header(self, request: HttpRequest) -> str | None:
        cookie_header: str | None = request.META.get("HTTP_COOKIE")
        return cookie_header


_REQUEST_READER = _RequestReader()


def policy_from_settings() -> SessionPolicy[HttpRequest]:
    """Build the per-request policy from `settings.OPS_SESSION`, checking every key once.

    The keys are the options of every entry point (`ops_session.SessionOptions`); callables may
    be given as dotted paths, and `attributes` receives the `HttpRequest`.

    Raises:
        ImproperlyConfigured: The setting is not a dict, has an unknown key, or a value that is
            not allowed; the message names the key.
    """
    configured = getattr(settings, SETTING, None)
    if configured is None:
        configured = {}
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured(
            f"{SETTING} must be a dict of options such as {{'on_invalid': 'reject'}}, "
            f"got {configured!r}."
        )
    try:
        return SessionPolicy(reader=_REQUEST_READER, where=SETTING, **configured)
    except (TypeError, ValueError, RuntimeError) as error:
        # The messages start with the option's name, which is the key.
        message = str(error)
        if not message.startswith(SETTING):
            message = f"{SETTING} is invalid: {message}"
        raise ImproperlyConfigured(message) from error


@checks.register
def check_settings(**kwargs: object) -> list[checks.CheckMessage]:
    """The system check of `OPS_SESSION`: what loading the middleware would raise, as an error.

    Registered when this module is imported: by `OpsSessionConfig` in `INSTALLED_APPS`, and by
    the `opentelemetry-instrument` instrumentor in a process that has Django.
    """
    try:
        policy_from_settings()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="ops_session.E001")]
    return []


class OpsSessionConfig(AppConfig):
    """Add `"ops_session.django.OpsSessionConfig"` to `INSTALLED_APPS` for `manage.py check`.

    It adds no models and no URLs: only the system check of the `OPS_SESSION` setting, so that a
    misspelt key fails `manage.py check` (and CI) rather than the first server start.
    """

    name = "ops_session"
    label = "ops_session"
    verbose_name = "ops-session"

    def ready(self) -> None:
        checks.register(check_settings)  # once: the registry is a set


class SessionMiddleware:
    """Run each Django request inside its own `session()`, streamed bodies included.

    Put it near the top of `MIDDLEWARE`, so that the middleware below it, the view, Django's
    500 page and its error log record all run inside the session. The id comes from the
    request's session header when it is valid and is generated otherwise; the response carries
    it back in the same header, unless the view set that header itself. A generated id is also
    written to `request.META` (and so `request.headers`). The middleware is sync and async
    capable, so Django never moves it to another thread. Options come from `settings.OPS_SESSION`
    (see `policy_from_settings`).

    Not to be confused with Django's cookie-based `django.contrib.sessions` middleware.

    Example:
        MIDDLEWARE = ["ops_session.django.SessionMiddleware", *MIDDLEWARE]
        OPS_SESSION = {"attributes": {"app": "shop"}}   # optional

    Raises:
        ImproperlyConfigured: `OPS_SESSION` is not valid, when Django loads the middleware (and
            in `manage.py check` with `OpsSessionConfig` installed).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.policy = policy_from_settings()
        self._meta_key = "HTTP_" + self.policy.header_name.upper().replace("-", "_")
        # Django hands an async get_response when the chain below runs async (ASGI).
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self._async:
            return self.__acall__(request)
        decision = self._session_for(request)
        if decision is None:
            return self._reject(request)
        context, origin = decision
        # Set and reset in this one frame: a token must be reset in the Context that made it.
        token = activate(context)
        baggage_token = self._attach_baggage(context)
        try:
            if request_listeners:
                notify_request_started(context)
            response: HttpResponseBase = self.get_response(request)
            self._finish(request, response, context, origin)
        finally:
            if baggage_token is not None:
                self.policy.detach_baggage(baggage_token)
            deactivate(token)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        decision = self._session_for(request)
        if decision is None:
            return self._reject(request)
        context, origin = decision
        token = activate(context)
        baggage_token = self._attach_baggage(context)
        try:
            if request_listeners:
                notify_request_started(context)
            response: HttpResponseBase = await self.get_response(request)
            self._finish(request, response, context, origin)
        finally:
            if baggage_token is not None:
                self.policy.detach_baggage(baggage_token)
            deactivate(token)
        return response

    def _session_for(self, request: HttpRequest) -> tuple[SessionContext, int] | None:
        policy = self.policy
        meta = request.META
        decision = policy.session_for(meta.get(self._meta_key), request)
        if decision is None:
            return None
        context, origin = decision
        if origin and policy.update_request_header:
            meta[self._meta_key] = context.id
            # request.headers is a cached_property over META: drop a copy made before us.
            request.__dict__.pop("headers", None)
        return context, origin

    def _attach_baggage(self, context: SessionContext) -> object | None:
        attach_baggage = self.policy.attach_baggage
        return None if attach_baggage is None else attach_baggage(context.id)

    def _finish(
        self, request: HttpRequest, response: HttpResponseBase, context: SessionContext, origin: int
    ) -> None:
        if isinstance(response, StreamingHttpResponse):
            _stream_in_session(response, context)
        if response.has_header(self.policy.header_name):
            return  # the view chose its own value, and so its own cookie
        response[self.policy.header_name] = context.id
        cookie = self.policy.session_cookie
        if cookie is None or origin == FROM_QUERY:
            return  # a link can carry a query parameter to anyone: never persisted
        if cookie.name in response.cookies:
            return  # the view set, rotated or deleted the cookie itself
        app_headers = [
            (name.lower(), value)
            for name, value in response.items()
            if name.lower() in ("cache-control", "vary")
        ]
        # Decided now, as the response leaves: SECURE_PROXY_SSL_HEADER and any middleware below
        # have had their say on the scheme.
        added = cookie.headers_for(context.id, request.is_secure(), app_headers)
        for name, value in added:
            if name == "Set-Cookie":
                _set_cookie(response, value)
            elif name == "Vary":
                patch_vary_headers(response, ("Cookie",))
            else:
                response[name] = value

    def _reject(self, request: HttpRequest) -> HttpResponseBadRequest:
        policy = self.policy
        response = HttpResponseBadRequest(
            policy.rejection_body, content_type="text/plain; charset=utf-8"
        )
        if policy.session_cookie is not None and policy.invalid_cookie(request):
            # Otherwise the browser sends the stale cookie, and is refused, until it expires.
            _set_cookie(response, policy.session_cookie.clearing(request.is_secure()))
        return response


def _set_cookie(response: HttpResponseBase, set_cookie: str) -> None:
    """Put a `Set-Cookie` value that `SessionCookie` wrote into Django's cookie jar."""
    pair, *attributes = set_cookie.split("; ")
    name, _, value = pair.partition("=")
    response.cookies[name] = value
    morsel = response.cookies[name]
    for attribute in attributes:
        key, _, attribute_value = attribute.partition("=")
        morsel[key.lower()] = attribute_value or True


def _stream_in_session(response: StreamingHttpResponse, context: SessionContext) -> None:
    """Make the body's iteration and `close()` run in the session, after the middleware returned.

    Django and the server iterate a streamed body after every middleware has returned, in
    another frame, thread or task (honeycomb beeline#166), as the WSGI middleware's body does.
    """
    if getattr(response, "file_to_stream", None) is not None:
        return  # a FileResponse: reading a file runs no app code, and servers may sendfile it
    content = response.streaming_content
    if isinstance(content, AsyncIterable):
        response.streaming_content = _async_chunks_in_session(content, context)
        return
    # Copied while the session is current; never reset, only dropped with the response.
    copied = contextvars.copy_context()
    response.streaming_content = _ChunksInSession(content, copied)
    # Runs the body's own close() (a generator's `finally`) and request_finished receivers.
    response.close = partial(copied.run, response.close)  # type: ignore[method-assign]


class _ChunksInSession:
    """A sync body whose every `next()` runs in the request's copied Context."""

    __slots__ = ("_iterator", "_context")

    def __init__(self, chunks: Iterable[bytes], context: contextvars.Context) -> None:
        self._context = context
        self._iterator = iter(chunks)

    def __iter__(self) -> _ChunksInSession:
        return self

    def __next__(self) -> bytes:
        return self._context.run(next, self._iterator)


async def _async_chunks_in_session(
    chunks: AsyncIterable[bytes], context: SessionContext
) -> AsyncIterator[bytes]:
    """An async body whose every step runs in the session, set and reset within the step."""
    iterator = aiter(chunks)
    while True:
        token = activate(context)
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        finally:
            deactivate(token)
        yield chunk
