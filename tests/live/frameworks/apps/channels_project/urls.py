"""The HTTP routes every framework app answers, as Django views."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from ..routes import DEFAULT_DELAY, HEADER, LINES, HandlerError, current_id, line, session_payload


async def read_session(request: HttpRequest) -> JsonResponse:
    return JsonResponse(session_payload(request.headers.get(HEADER)))


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    async def lines() -> AsyncIterator[str]:
        for _ in range(LINES):
            await asyncio.sleep(0)
            yield line()

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def read_twice(request: HttpRequest) -> JsonResponse:
    first = current_id()
    await asyncio.sleep(float(request.GET.get("delay", DEFAULT_DELAY)))
    return JsonResponse({"first": first, "second": current_id()})


async def fail(request: HttpRequest) -> HttpResponse:
    raise HandlerError


urlpatterns = [
    path("session", read_session),
    path("stream", stream),
    path("sleep", read_twice),
    path("error", fail),
]
