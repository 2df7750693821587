"""Memory still held after many in-process requests, measured by tracemalloc."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from . import asgi_apps, wsgi_apps
from .inprocess import asgi_loop, wsgi_loop


@dataclass(frozen=True)
class Growth:
    name: str
    requests: int
    before: int  # bytes traced after the warm-up
    after: int  # bytes traced after `requests` more requests

    @property
    def per_request(self) -> float:
        return (self.after - self.before) / self.requests


def traced_growth(name: str, run: Callable[[int], None], requests: int) -> Growth:
    # Traced from before the warm-up, so that both levels count what a bounded store holds (the
    # batch of ready ids, a cache): one allocated during the warm-up and replaced during the
    # requests then counts once in each level, rather than once in `after` alone.
    tracemalloc.start()
    try:
        run(min(requests, 1000))  # caches, lazy imports, the event loop's first allocations
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        run(requests)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return Growth(name, requests, before, after)


def growth(runner: asyncio.Runner, requests: int) -> list[Growth]:
    asgi = asgi_apps.configurations()
    wsgi = wsgi_apps.configurations()
    picks: list[tuple[str, Callable[[int], None]]] = [
        ("ASGI: " + name, asgi_loop(runner, *asgi[name]))
        for name in ("bare Starlette", "ops-session, valid id", "ops-session, generated id")
    ] + [
        ("WSGI: " + name, wsgi_loop(*wsgi[name]))
        for name in ("bare Flask", "ops-session, valid id", "ops-session, 10-chunk stream")
    ]
    return [traced_growth(name, run, requests) for name, run in picks]
