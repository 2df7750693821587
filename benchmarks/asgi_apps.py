"""The ASGI configurations: a minimal Starlette app, bare and behind each session middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
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
    SessionMiddleware,
    current_session,
    session,
    set_outgoing_carriers,
)
from ops_session._rules import DEFAULT_CARRIERS

from . import tracing
from .required import (
    HEADER_KEY,
    HEADER_LENGTH,
    ORDINARY_HEADERS,
    VALID_ID,
    ASGIApp,
    PassThroughMiddleware,
    RequiredStepsMiddleware,
    new_instance,
    set_session_attributes,
    set_session_id,
    valid_id,
)

__all__ = [
    "HEADER_KEY",
    "HEADER_LENGTH",
    "ORDINARY_HEADERS",
    "VALID_ID",
    "ASGIApp",
    "PassThroughMiddleware",
    "RequiredStepsMiddleware",
    "new_instance",
    "set_session_attributes",
    "set_session_id",
    "valid_id",
]


async def endpoint(request: Request) -> Response:
    return PlainTextResponse("ok")


async def endpoint_with_session_header(request: Request) -> Response:
    return PlainTextResponse("ok", headers={SESSION_HEADER_NAME: VALID_ID})


async def endpoint_reading_the_session(request: Request) -> Response:
    current_session()
    return PlainTextResponse("ok")


def endpoint_reading_mirascopes_session() -> Callable[[Request], Awaitable[Response]]:
    """A handler that reads Mirascope's view of the session, built when a configuration asks:
    importing `mirascope.ops` takes seconds, which every module importing this one would pay."""
    from mirascope.ops import current_session as mirascope_current_session

    async def reading_mirascopes_session(request: Request) -> Response:
        mirascope_current_session()
        return PlainTextResponse("ok")

    return reading_mirascopes_session


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
    # the default carriers stay, for the job queues' rows later in the same process.
    set_outgoing_carriers([*DEFAULT_CARRIERS, "baggage"])
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
            starlette_reading(endpoint_reading_mirascopes_session(), Middleware(SessionMiddleware)),
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
