"""Where ops-session's per-request time goes, step by step, above the pass-through floor.

Each configuration adds one step of what a middleware of ops-session does to the one before: the
pass-through middleware (make a value current, wrap `send` or `start_response`), then reading
the header, then checking the id and building the session (the policy's own `session_for`),
then adding the header to the response; the last is ops-session itself, which also leaves the
session in the scope's state (ASGI), has its own body wrapper (WSGI) and names the session in
errors. The difference between two neighbours is that step's cost. Each step repeats the one
before on purpose: a helper shared by them would add a call to every step measured.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any

from starlette.middleware import Middleware

from ops_session import SESSION_HEADER_NAME, SessionMiddleware, WSGISessionMiddleware

from . import asgi_apps, report, wsgi_apps
from .asgi_apps import ASGIApp, session_header, starlette
from .timing import Result, paired_median
from .wsgi_apps import BodyInContext, WSGIApp

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

_current: ContextVar[object] = ContextVar("benchmarks.anatomy")
_HEADER_KEY = SESSION_HEADER_NAME.lower().encode("latin-1")
_POLICY = SessionMiddleware(starlette()).policy


def _header_value(scope: Any) -> bytes | None:
    for name, value in scope["headers"]:
        if name == _HEADER_KEY:
            return value  # type: ignore[no-any-return]
    return None


class ReadingTheHeader:
    """The pass-through, making the session header's value current instead of the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        raw = _header_value(scope)
        incoming = None if raw is None else raw.decode("latin-1")

        def send_through(message: Message) -> Awaitable[None]:
            return send(message)

        token = _current.set(incoming)
        try:
            await self.app(scope, receive, send_through)
        finally:
            _current.reset(token)


class CheckingIt:
    """Then checking the id and building the session, as ops-session's policy does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        raw = _header_value(scope)
        decision = _POLICY.session_for(None if raw is None else raw.decode("latin-1"), scope)
        assert decision is not None
        context, _ = decision

        def send_through(message: Message) -> Awaitable[None]:
            return send(message)

        token = _current.set(context)
        try:
            await self.app(scope, receive, send_through)
        finally:
            _current.reset(token)


class AnsweringWithIt:
    """Then adding the header to the response start, in a new message, unless the app set it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        raw = _header_value(scope)
        decision = _POLICY.session_for(None if raw is None else raw.decode("latin-1"), scope)
        assert decision is not None and raw is not None
        context, _ = decision
        response_header = (_HEADER_KEY, raw)

        def send_with_header(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = message["headers"]
                for name, _ in headers:
                    if name.lower() == _HEADER_KEY:
                        break
                else:
                    message = dict(message)
                    message["headers"] = [*headers, response_header]
            return send(message)

        token = _current.set(context)
        try:
            await self.app(scope, receive, send_with_header)
        finally:
            _current.reset(token)


STEPS: list[tuple[str, Callable[[ASGIApp], ASGIApp]]] = [
    ("pass-through middleware", asgi_apps.PassThroughMiddleware),
    ("+ read the session header", ReadingTheHeader),
    ("+ check the id and build the session", CheckingIt),
    ("+ add the header to the response", AnsweringWithIt),
    ("ops-session (+ the scope's state, error notes)", SessionMiddleware),
]


def asgi_configurations() -> dict[str, tuple[ASGIApp, list[tuple[bytes, bytes]]]]:
    """Name -> (app, extra request headers), in the order of the steps; the bare app first."""
    apps: dict[str, tuple[ASGIApp, list[tuple[bytes, bytes]]]] = {
        "bare Starlette": (starlette(), session_header())
    }
    for name, middleware in STEPS:
        apps[name] = (starlette(Middleware(middleware)), session_header())
    return apps


_ENVIRON_KEY = "HTTP_" + SESSION_HEADER_NAME.upper().replace("-", "_")
_HEADER_LOWER = SESSION_HEADER_NAME.lower()
_WSGI_POLICY = WSGISessionMiddleware(wsgi_apps.flask_app().wsgi_app).policy


class CheckingTheId:
    """The WSGI pass-through, with the session header read, checked and made a session."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        decision = _WSGI_POLICY.session_for(environ.get(_ENVIRON_KEY), environ)
        assert decision is not None
        context, _ = decision

        def start_response_through(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
        ) -> Any:
            return start_response(status, headers, exc_info)

        request_context = contextvars.copy_context()
        request_context.run(_current.set, context)
        body = request_context.run(self.app, environ, start_response_through)
        return BodyInContext(body, request_context)


class AnsweringWithTheId:
    """Then adding the header to the response's headers, unless the app set it."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        decision = _WSGI_POLICY.session_for(environ.get(_ENVIRON_KEY), environ)
        assert decision is not None
        context, _ = decision
        response_header = (SESSION_HEADER_NAME, context.id)

        def start_response_with_header(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
        ) -> Any:
            for name, _ in headers:
                if name.lower() == _HEADER_LOWER:
                    break
            else:
                headers = [*headers, response_header]
            return start_response(status, headers, exc_info)

        request_context = contextvars.copy_context()
        request_context.run(_current.set, context)
        body = request_context.run(self.app, environ, start_response_with_header)
        return BodyInContext(body, request_context)


WSGI_STEPS: list[tuple[str, Callable[[WSGIApp], WSGIApp]]] = [
    ("pass-through middleware", wsgi_apps.PassThroughMiddleware),
    ("+ read the session header, check the id and build the session", CheckingTheId),
    ("+ add the header to the response", AnsweringWithTheId),
    (
        "ops-session (+ its own body wrapper, the file-wrapper check, error notes)",
        WSGISessionMiddleware,
    ),
]


def wsgi_configurations() -> dict[str, tuple[WSGIApp, dict[str, Any]]]:
    """Name -> (app, environ), in the order of the steps; the bare app first."""
    bare = wsgi_apps.flask_app().wsgi_app
    environ = wsgi_apps.environ(session_id=asgi_apps.VALID_ID)
    apps: dict[str, tuple[WSGIApp, dict[str, Any]]] = {"bare Flask": (bare, environ)}
    for name, middleware in WSGI_STEPS:
        apps[name] = (middleware(bare), environ)
    return apps


def table(results: list[Result]) -> str:
    """Each step's time per request, what it adds to the step before, and the total overhead."""
    bare, *steps = results
    rows = []
    for before, step in zip([bare, *steps], steps, strict=False):
        added = paired_median(lambda value, previous: value - previous, step, before)
        total = paired_median(lambda value, base: value - base, step, bare)
        rows.append([step.name, f"{step.median:.2f}", f"{added:+.2f}", f"{total:+.2f}"])
    header = ["step", "µs per request", "added by the step, µs", "overhead over bare, µs"]
    return report.table(header, rows)
