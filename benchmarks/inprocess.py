"""Call ASGI, WSGI and Django apps directly, as a server would, and time the calls.

Every integration module of ops-session is imported here, unconfigured, as in an app that
installed them all, so that the in-process rows show what the middlewares cost beside unused
integrations.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterable
from typing import Any

from . import asgi_apps, tracing, wsgi_apps
from .required import serve_asgi
from .timing import Sampler, per_call_microseconds

INTEGRATIONS = tuple(
    f"ops_session.{name}"
    for name in (
        "aiohttp", "arq", "celery", "django", "httpx", "httpx2", "instrumentation", "logging",
        "otel", "requests", "rq",
    )
)  # fmt: skip
for _integration in INTEGRATIONS:
    importlib.import_module(_integration)


def asgi_loop(
    runner: asyncio.Runner, app: asgi_apps.ASGIApp, extra_headers: list[tuple[bytes, bytes]]
) -> Callable[[int], None]:
    """Run `app` over fresh scopes shaped like uvicorn's, on the runner's event loop."""
    headers = [*asgi_apps.ORDINARY_HEADERS, *extra_headers]

    def batch(n: int) -> None:
        with tracing.listening(app):
            runner.run(serve_asgi(app, headers, n))

    return batch


def wsgi_loop(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any]
) -> Callable[[int], None]:
    """Run `app` over fresh environs, consuming and closing each body as a server does."""

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[..., None]:
        return write

    def write(data: bytes) -> None:
        pass

    def run(n: int) -> None:
        with tracing.listening(app):
            requests(n)

    def requests(n: int) -> None:
        for _ in range(n):
            body = app(dict(environ), start_response)
            try:
                for _chunk in body:
                    pass
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    return run


def asgi_samplers(
    runner: asyncio.Runner,
    calls: int,
    configurations: dict[str, tuple[asgi_apps.ASGIApp, list[tuple[bytes, bytes]]]] | None = None,
) -> dict[str, Sampler]:
    """Samplers of the given ASGI configurations; `asgi_apps.configurations()` by default."""
    if configurations is None:
        configurations = asgi_apps.configurations()
    return {
        name: per_call_microseconds(asgi_loop(runner, app, headers), calls)
        for name, (app, headers) in configurations.items()
    }


def wsgi_samplers(
    calls: int,
    configurations: dict[str, tuple[wsgi_apps.WSGIApp, dict[str, Any]]] | None = None,
) -> dict[str, Sampler]:
    """Samplers of the given WSGI configurations; `wsgi_apps.configurations()` by default."""
    if configurations is None:
        configurations = wsgi_apps.configurations()
    return {
        name: per_call_microseconds(wsgi_loop(app, environ), calls)
        for name, (app, environ) in configurations.items()
    }


def django_samplers(calls: int) -> dict[str, Sampler]:
    from . import django_apps  # configures Django's settings for this process

    return {
        name: per_call_microseconds(wsgi_loop(app, environ), calls)
        for name, (app, environ) in django_apps.configurations().items()
    }
