"""Views that report the session they run in: sync and async, plain, streamed and failing."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from ops_session import SESSION_HEADER_NAME, Jsonable, current_session, session

from . import logs

log = logging.getLogger("views")

# What streamed bodies and cancelled views saw last, by the `key` their request named.
_recorded: dict[str, str | None] = {}
_lock = threading.Lock()


def request_attributes(request: HttpRequest) -> dict[str, Jsonable]:
    """The test project's `OPS_SESSION["attributes"]`, named there by its dotted path."""
    return {"method": request.method or "", "path": request.path}


def _current_id() -> str | None:
    current = current_session()
    return current.id if current else None


def _record(request: HttpRequest, value: str | None) -> None:
    with _lock:
        _recorded[request.GET.get("key", "")] = value


def _seen(request: HttpRequest) -> dict[str, Any]:
    current = current_session()
    return {
        "id": current.id if current else None,
        "attributes": dict(current.attributes or {}) if current else None,
        "request_header": request.headers.get(SESSION_HEADER_NAME),
        "meta": request.META.get("HTTP_MIRASCOPE_SESSION_ID"),
        "before": getattr(request, "session_before", "no probe"),
        "sync_middleware": getattr(request, "seen_by_sync_middleware", None),
        "thread": threading.get_ident(),
    }


def read_session(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_seen(request))


async def read_session_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_seen(request))


def _delay(request: HttpRequest) -> float:
    return float(request.GET.get("delay", "0.01"))


def read_twice(request: HttpRequest) -> JsonResponse:
    first = _current_id()
    time.sleep(_delay(request))
    return JsonResponse({"first": first, "second": _current_id()})


async def read_twice_async(request: HttpRequest) -> JsonResponse:
    first = _current_id()
    await asyncio.sleep(_delay(request))
    return JsonResponse({"first": first, "second": _current_id()})


def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("count", "5"))

    def chunks() -> Iterator[str]:
        try:
            for _ in range(count):
                time.sleep(0.01)
                yield f"{_current_id()}\n"
        finally:
            _record(request, _current_id())  # at exhaustion, or in close() after a disconnect

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def stream_async(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("count", "5"))

    async def chunks() -> AsyncIterator[str]:
        try:
            for _ in range(count):
                await asyncio.sleep(0.01)
                yield f"{_current_id()}\n"
        finally:
            _record(request, _current_id())

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("unhandled on purpose")


async def fail_async(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("unhandled on purpose")


def own_header(request: HttpRequest) -> HttpResponse:
    return HttpResponse("own", headers={SESSION_HEADER_NAME: "app-chosen"})


def nested(request: HttpRequest) -> JsonResponse:
    outer = _current_id()
    with session(id="nested-inner"):
        inner = _current_id()
    return JsonResponse({"outer": outer, "inner": inner, "after": _current_id()})


async def slow(request: HttpRequest) -> HttpResponse:
    """Sleeps until cancelled (the client went away), and records the session it was in."""
    try:
        await asyncio.sleep(float(request.GET.get("delay", "30")))
    except asyncio.CancelledError:
        _record(request, _current_id())
        raise
    return HttpResponse("slept")


def recorded_for(key: str) -> dict[str, Any]:
    """Whether the body or view of the request that named `key` recorded, and what it saw."""
    with _lock:
        return {"done": key in _recorded, "id": _recorded.get(key)}


def recorded(request: HttpRequest) -> JsonResponse:
    return JsonResponse(recorded_for(request.GET.get("key", "")))


def logged(request: HttpRequest) -> JsonResponse:
    marker = request.GET.get("marker", "")
    log.info("view ran %s", marker)
    return JsonResponse({"lines": [line for line in logs.lines() if line.endswith(f" {marker}")]})
