"""Middleware the test project puts around the session middleware, to watch it from outside."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

from ops_session import current_session


def _current_id() -> str | None:
    current = current_session()
    return current.id if current else None


class SessionProbeMiddleware:
    """Above the session middleware: records what is current before it and after it returned."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        request.session_before = _current_id()  # type: ignore[attr-defined]
        response: HttpResponseBase = self.get_response(request)
        response["X-Session-After"] = _current_id() or "none"
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request.session_before = _current_id()  # type: ignore[attr-defined]
        response: HttpResponseBase = await self.get_response(request)
        response["X-Session-After"] = _current_id() or "none"
        return response


class SyncOnlyMiddleware(MiddlewareMixin):
    """A sync-only middleware in the old style, as many third-party ones are."""

    sync_capable = True
    async_capable = False

    def process_request(self, request: HttpRequest) -> None:
        request.seen_by_sync_middleware = _current_id()  # type: ignore[attr-defined]

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Sync-Middleware-Saw"] = _current_id() or "none"
        return response
