"""The ASGI configurations: a minimal Starlette app, bare and behind each session middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from mirascope.ops import current_session as mirascope_current_session
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette_context import plugins
from starlette_context.middleware import RawContextMiddleware

from ops_session import (
    SESSION_HEADER_NAME,
    SessionContext,
    SessionMiddleware,
    current_session,
    generate_session_id,
    session,
    set_outgoing_carriers,
)
from ops_session._core import VALID_SESSION_ID

from . import tracing

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

VALID_ID = "6f1c2b7e-3d4a-4f5e-9a8b-7c6d5e4f3a2b"

# About ten ordinary request headers, as a browser behind a proxy sends them.
ORDINARY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"application/json, text/plain, */*"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"referer", b"https://app.example.com/chat/42"),
    (b"origin", b"https://app.example.com"),
    (b"x-forwarded-for", b"203.0.113.7"),
    (b"x-forwarded-proto", b"https"),
    (b"connection", b"keep-alive"),
]


async def endpoint(request: Request) -> Response:
    return PlainTextResponse("ok")


async def endpoint_with_session_header(request: Request) -> Response:
    return PlainTextResponse("ok", headers={SESSION_HEADER_NAME: VALID_ID})


async def endpoint_reading_the_session(request: Request) -> Response:
    current_session()
    return PlainTextResponse("ok")


async def endpoint_reading_mirascopes_session(request: Request) -> Response:
    mirascope_current_session()
    return PlainTextResponse("ok")


def starlette(*middleware: Middleware) -> Starlette:
    return Starlette(routes=[Route("/", endpoint)], middleware=list(middleware))


def starlette_reading(
    read: Callable[[Request], Awaitable[Response]], *middleware: Middleware
) -> Starlette:
    """The bare app, but its handler reads the current session (ours, or Mirascope's)."""
    return Starlette(routes=[Route("/", read)], middleware=list(middleware))


def starlette_setting_the_header(*middleware: Middleware) -> Starlette:
    """The bare app, but answering with the session header itself: what writing it costs."""
    return Starlette(routes=[Route("/", endpoint_with_session_header)], middleware=list(middleware))


async def open_session(request: Request, call_next: Any) -> Response:
    """The `@app.middleware("http")` recipe: a session around `call_next`.

    FastAPI's decorator (and Starlette's before 1.0) wraps such a function in a
    `BaseHTTPMiddleware`, which is what `session_recipe()` does.
    """
    with session(id=request.headers.get(SESSION_HEADER_NAME) or None) as current:
        response: Response = await call_next(request)
        response.headers[SESSION_HEADER_NAME] = current.id
        return response


def session_recipe() -> Starlette:
    return starlette(Middleware(BaseHTTPMiddleware, dispatch=open_session))


_floor_request: ContextVar[object] = ContextVar("benchmarks.floor_request")


class PassThroughMiddleware:
    """The least any session middleware does: make a value current and wrap `send`.

    It reads no header, checks nothing and adds nothing to the response, so its cost is the
    floor under every middleware of this shape, ops-session's included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def send_through(message: MutableMapping[str, Any]) -> Awaitable[None]:
            return send(message)  # type: ignore[no-any-return]

        token = _floor_request.set(scope)
        try:
            await self.app(scope, receive, send_through)
        finally:
            _floor_request.reset(token)


HEADER_KEY = SESSION_HEADER_NAME.lower().encode("latin-1")
_required_steps_session: ContextVar[SessionContext] = ContextVar("benchmarks.required_steps")
valid_id = VALID_SESSION_ID.fullmatch
# The slots' own setters, as ops-session's policy builds a session whose id is checked already
# (shared with the step table, whose steps must not add calls of their own).
set_session_id = SessionContext.__dict__["id"].__set__
set_session_attributes = SessionContext.__dict__["attributes"].__set__
new_instance = object.__new__


class RequiredStepsMiddleware:
    """Every step a middleware with ops-session's behaviour must take, inline, and no more.

    It reads the session header, checks the id with the default validator's regex (generating
    one when it is missing or invalid), builds the frozen `SessionContext` through its slots'
    setters, makes it current, and adds the header to the response start in a new message
    unless the app set its own. It has no options, no scope state and no error notes: its cost
    is the limit of any goal that compares ops-session with the floor.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        raw = None
        for name, value in scope["headers"]:
            if name == HEADER_KEY:
                raw = value
                break
        incoming = None if raw is None else raw.decode("latin-1")
        context = new_instance(SessionContext)
        if incoming and valid_id(incoming):
            set_session_id(context, incoming)
            response_header = (HEADER_KEY, raw)
        else:
            session_id = generate_session_id()
            set_session_id(context, session_id)
            response_header = (HEADER_KEY, session_id.encode("latin-1"))
        set_session_attributes(context, None)

        def send_with_header(message: MutableMapping[str, Any]) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = message["headers"]
                for name, _ in headers:
                    if name.lower() == HEADER_KEY:
                        break
                else:
                    message = dict(message)
                    message["headers"] = [*headers, response_header]
            return send(message)  # type: ignore[no-any-return]

        token = _required_steps_session.set(context)
        try:
            await self.app(scope, receive, send_with_header)
        finally:
            _required_steps_session.reset(token)


def floor() -> Starlette:
    """The floor under any session middleware, whole: the pass-through over the app writing the
    session header, so that it also pays for the server writing one more response header."""
    return starlette_setting_the_header(Middleware(PassThroughMiddleware))


def session_header(value: str = VALID_ID) -> list[tuple[bytes, bytes]]:
    return [(SESSION_HEADER_NAME.lower().encode(), value.encode())]


# What OpenTelemetry's baggage propagator sends upstream: another entry, then the session's.
BAGGAGE_HEADER = [(b"baggage", f"tenant=acme,session.id={VALID_ID}".encode())]


def configurations() -> dict[str, tuple[ASGIApp, list[tuple[bytes, bytes]]]]:
    """Name -> (app, extra request headers). The first entry is the bare app."""
    # The baggage rows measure the id going into baggage, which only a rule naming it allows;
    # no other row reads the carrier rule.
    set_outgoing_carriers(["baggage"])
    bare = starlette()
    stamped_provider, listener = tracing.stamped_provider()
    return {
        "bare Starlette": (bare, []),
        "ops-session, valid id": (starlette(Middleware(SessionMiddleware)), session_header()),
        "ops-session, generated id": (starlette(Middleware(SessionMiddleware)), []),
        "ops-session, per-request attributes": (
            starlette(
                Middleware(SessionMiddleware, attributes=lambda scope: {"path": scope["path"]})
            ),
            session_header(),
        ),
        "ops-session, valid id, handler reads current_session()": (
            starlette_reading(endpoint_reading_the_session, Middleware(SessionMiddleware)),
            session_header(),
        ),
        "ops-session, valid id, handler reads mirascope.ops.current_session()": (
            starlette_reading(endpoint_reading_mirascopes_session, Middleware(SessionMiddleware)),
            session_header(),
        ),
        "ops-session, valid id, after a span processor was added and removed": (
            tracing.after_a_listener(starlette(Middleware(SessionMiddleware))),
            session_header(),
        ),
        # The baggage option (issue 29): reads `baggage` when the header is absent, and puts the
        # id into OpenTelemetry's baggage for the request (the carrier rule names baggage below).
        "ops-session, baggage on, valid id": (
            starlette(Middleware(SessionMiddleware, baggage=True)),
            session_header(),
        ),
        "ops-session, baggage on, generated id": (
            starlette(Middleware(SessionMiddleware, baggage=True)),
            [],
        ),
        "ops-session, baggage on, id in baggage": (
            starlette(Middleware(SessionMiddleware, baggage=True)),
            BAGGAGE_HEADER,
        ),
        "pass-through middleware": (
            starlette(Middleware(PassThroughMiddleware)),
            session_header(),
        ),
        "asgi-correlation-id": (
            starlette(Middleware(CorrelationIdMiddleware)),
            [(b"x-request-id", VALID_ID.encode())],
        ),
        "asgi-correlation-id, validator=None": (
            starlette(Middleware(CorrelationIdMiddleware, validator=None)),
            [(b"x-request-id", VALID_ID.encode())],
        ),
        "@app.middleware recipe": (session_recipe(), session_header()),
        "starlette-context, request id": (
            starlette(Middleware(RawContextMiddleware, plugins=(plugins.RequestIdPlugin(),))),
            [(b"x-request-id", VALID_ID.encode())],
        ),
        "OpenTelemetry ASGI": (
            OpenTelemetryMiddleware(bare, tracer_provider=TracerProvider()),
            [],
        ),
        # FastAPIInstrumentor's order: OpenTelemetry's middleware outside the session middleware.
        "OpenTelemetry ASGI + ops-session": (
            OpenTelemetryMiddleware(
                starlette(Middleware(SessionMiddleware)), tracer_provider=tracing.provider()
            ),
            session_header(),
        ),
        "OpenTelemetry ASGI + ops-session, spans stamped": (
            tracing.stamped(
                OpenTelemetryMiddleware(
                    starlette(Middleware(SessionMiddleware)), tracer_provider=stamped_provider
                ),
                listener,
            ),
            session_header(),
        ),
    }
