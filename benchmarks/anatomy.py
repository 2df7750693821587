"""Where ops-session's per-request time goes, step by step, above the pass-through floor.

Each configuration adds one step of what a session middleware must do to the one before: the
pass-through middleware (make a value current, wrap `send` or `start_response`), then reading
the header, then checking the id and building the frozen `SessionContext`, then adding the header
to the response unless the app set its own. Those steps are written inline, as lean as CPython
allows (the default validator's regex, the session's slot setters, one loop per header list), so
the last of them is the least a middleware with ops-session's behaviour can cost: the limit of
the goals that compare ops-session with the floor. The last configuration is ops-session itself;
what it adds to that is its options, the scope's state (ASGI), its own body wrapper (WSGI) and
error notes. The difference between two neighbours is that step's cost. Each step repeats the
one before on purpose: a helper shared by them would add a call to every step measured.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.middleware import Middleware

from ops_session import (
    SESSION_HEADER_NAME,
    SessionContext,
    SessionMiddleware,
    WSGISessionMiddleware,
    generate_session_id,
)

from . import asgi_apps, report, wsgi_apps
from .asgi_apps import (
    HEADER_KEY,
    HEADER_LENGTH,
    ASGIApp,
    new_instance,
    session_header,
    set_session_attributes,
    set_session_id,
    starlette,
    valid_id,
)
from .required import SESSION_VARIABLE, AnsweringWithTheId
from .timing import Result, paired_median
from .wsgi_apps import BodyInContext, WSGIApp

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


class ReadingTheHeader:
    """The pass-through, making the session header's value current instead of the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        raw = None
        for name, value in scope["headers"]:
            if len(name) == HEADER_LENGTH and (name == HEADER_KEY or name.lower() == HEADER_KEY):
                raw = value
                break
        incoming = None if raw is None else raw.decode("latin-1")

        def send_through(message: Message) -> Awaitable[None]:
            return send(message)

        token = SESSION_VARIABLE.set(incoming)
        try:
            await self.app(scope, receive, send_through)
        finally:
            SESSION_VARIABLE.reset(token)


class CheckingIt:
    """Then checking the id and building the session (a generated id for a missing or bad one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        raw = None
        for name, value in scope["headers"]:
            if len(name) == HEADER_LENGTH and (name == HEADER_KEY or name.lower() == HEADER_KEY):
                raw = value
                break
        incoming = None if raw is None else raw.decode("latin-1")
        context = new_instance(SessionContext)
        set_session_id(
            context, incoming if incoming and valid_id(incoming) else generate_session_id()
        )
        set_session_attributes(context, None)

        def send_through(message: Message) -> Awaitable[None]:
            return send(message)

        token = SESSION_VARIABLE.set(context)
        try:
            await self.app(scope, receive, send_through)
        finally:
            SESSION_VARIABLE.reset(token)


REQUIRED_STEPS = "+ add the header to the response: the required steps, and no more"
STEPS: list[tuple[str, Callable[[ASGIApp], ASGIApp]]] = [
    ("pass-through middleware", asgi_apps.PassThroughMiddleware),
    ("+ read the session header", ReadingTheHeader),
    ("+ check the id and build the session", CheckingIt),
    (REQUIRED_STEPS, asgi_apps.RequiredStepsMiddleware),
    ("ops-session (+ its options, the scope's state, error notes)", SessionMiddleware),
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


class CheckingTheId:
    """The WSGI pass-through, with the session header read, checked and made a session."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        incoming = environ.get(_ENVIRON_KEY)
        context = new_instance(SessionContext)
        set_session_id(
            context, incoming if incoming and valid_id(incoming) else generate_session_id()
        )
        set_session_attributes(context, None)

        def start_response_through(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
        ) -> Any:
            return start_response(status, headers, exc_info)

        request_context = contextvars.copy_context()
        request_context.run(SESSION_VARIABLE.set, context)
        body = request_context.run(self.app, environ, start_response_through)
        return BodyInContext(body, request_context)


WSGI_STEPS: list[tuple[str, Callable[[WSGIApp], WSGIApp]]] = [
    ("pass-through middleware", wsgi_apps.PassThroughMiddleware),
    ("+ read the session header, check the id and build the session", CheckingTheId),
    (REQUIRED_STEPS, AnsweringWithTheId),
    (
        "ops-session (+ its options, its own body wrapper, the file-wrapper check, error notes)",
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
