"""Django: a `MIDDLEWARE` entry that runs each request, and its streamed body, in a session.

Configured by one optional setting, `OPS_SESSION`, a dict of the options the ASGI and WSGI
middlewares take, with the same defaults.  [extra: django]
"""

from __future__ import annotations

import contextvars
import difflib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeAlias

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
    from django.http.response import HttpResponseBase
    from django.utils.module_loading import import_string
except ImportError as error:
    raise ImportError("ops_session.django needs Django: install 'ops-session[django]'.") from error

from ._core import (
    SESSION_HEADER_NAME,
    SessionContext,
    activate,
    deactivate,
    generate_session_id,
    is_valid_session_id,
    notify_request_started,
    request_listeners,
)
from ._policy import SessionPolicy

__all__ = ["SETTING", "SessionMiddleware", "policy_from_settings"]

SETTING = "OPS_SESSION"
"""The name of the Django setting that configures `SessionMiddleware`."""

GetResponse: TypeAlias = Callable[[HttpRequest], Any]


def _as_given(key: str, value: object) -> object:
    return value


def _imported(key: str, value: object) -> object:
    """A dotted path such as `"myapp.sessions.new_id"` becomes the object it names."""
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"{SETTING}[{key!r}] must be a callable or the dotted path of one, got {value!r}, "
            f"which cannot be imported: {error}"
        ) from error


# Every OPS_SESSION key, in the order SessionPolicy lists its options: the default (the ASGI
# and WSGI middlewares' own) and how a setting's value becomes the option. A new policy option
# is one more line here.
_OPTIONS: dict[str, tuple[object, Callable[[str, object], object]]] = {
    "header_name": (SESSION_HEADER_NAME, _as_given),
    "generator": (generate_session_id, _imported),
    "validator": (is_valid_session_id, _imported),
    "on_invalid": ("generate", _as_given),
    "attributes": (None, _imported),  # a mapping, or a callable taking the HttpRequest
    "update_request_header": (True, _as_given),
    "baggage": (False, _as_given),
}


def policy_from_settings() -> SessionPolicy[HttpRequest]:
    """Build the per-request policy from `settings.OPS_SESSION`, checking every key once.

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
    for key in configured:
        if key not in _OPTIONS:
            close = difflib.get_close_matches(str(key), _OPTIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ImproperlyConfigured(
                f"{SETTING} has no option {key!r}: {hint}The options are {', '.join(_OPTIONS)}."
            )
    options = {
        key: convert(key, configured.get(key, default))
        for key, (default, convert) in _OPTIONS.items()
    }
    try:
        return SessionPolicy(**options, reader=_META_READER)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError) as error:
        # SessionPolicy's messages start with the option's name, which is the key.
        raise ImproperlyConfigured(f"{SETTING} is invalid: {error}") from error


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
        ImproperlyConfigured: `OPS_SESSION` is not valid, when Django loads the middleware.
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
        context = self._session_for(request)
        if context is None:
            return self._reject()
        # Set and reset in this one frame: a token must be reset in the Context that made it.
        token = activate(context)
        baggage_token = self._attach_baggage(context)
        try:
            if request_listeners:
                notify_request_started(context)
            response: HttpResponseBase = self.get_response(request)
            self._finish(response, context)
        finally:
            if baggage_token is not None:
                self.policy.detach_baggage(baggage_token)
            deactivate(token)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        context = self._session_for(request)
        if context is None:
            return self._reject()
        token = activate(context)
        baggage_token = self._attach_baggage(context)
        try:
            if request_listeners:
                notify_request_started(context)
            response: HttpResponseBase = await self.get_response(request)
            self._finish(response, context)
        finally:
            if baggage_token is not None:
                self.policy.detach_baggage(baggage_token)
            deactivate(token)
        return response

    def _session_for(self, request: HttpRequest) -> SessionContext | None:
        policy = self.policy
        meta = request.META
        decision = policy.session_for(meta.get(self._meta_key), request)
        if decision is None:
            return None
        context, generated = decision
        if generated and policy.update_request_header:
            meta[self._meta_key] = context.id
            # request.headers is a cached_property over META: drop a copy made before us.
            request.__dict__.pop("headers", None)
        return context

    def _attach_baggage(self, context: SessionContext) -> object | None:
        attach_baggage = self.policy.attach_baggage
        return None if attach_baggage is None else attach_baggage(context.id)

    def _finish(self, response: HttpResponseBase, context: SessionContext) -> None:
        if isinstance(response, StreamingHttpResponse):
            _stream_in_session(response, context)
        if not response.has_header(self.policy.header_name):
            response[self.policy.header_name] = context.id

    def _reject(self) -> HttpResponseBadRequest:
        return HttpResponseBadRequest(
            self.policy.rejection_body, content_type="text/plain; charset=utf-8"
        )


class _MetaReader:
    """Reads the `baggage` header from `request.META` (the one other place Django reads)."""

    __slots__ = ()

    def header(self, request: HttpRequest, name: str) -> str | None:
        value: str | None = request.META.get("HTTP_" + name.upper().replace("-", "_"))
        return value

    def query_string(self, request: HttpRequest) -> str:  # pragma: no cover - no option reads it
        return str(request.META.get("QUERY_STRING", ""))

    def cookie_header(self, request: HttpRequest) -> str | None:  # pragma: no cover - as above
        value: str | None = request.META.get("HTTP_COOKIE")
        return value


_META_READER = _MetaReader()


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
