"""The lean middlewares the goals measure ops-session against, importing only what they need.

The pass-through middlewares (the floor) and the required steps, for ASGI and WSGI, live here
rather than beside the peers' configurations so that the instruction counter
(`instructions.py`) can run them in a process that imported no peer and no Mirascope.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextvars import ContextVar
from typing import Any, cast

from ops_session import SESSION_HEADER_NAME, SessionContext, generate_session_id
from ops_session._core import VALID_SESSION_ID, _current_session

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
WSGIApp = Callable[..., Iterable[bytes]]

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


# A request's scope as uvicorn builds it, less its headers; each request gets a fresh copy.
_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 51000),
    "scheme": "http",
    "method": "GET",
    "root_path": "",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
}
_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def serve_asgi(app: ASGIApp, headers: list[tuple[bytes, bytes]], n: int) -> None:
    """Call `app` with `n` fresh uvicorn-shaped scopes carrying `headers`, in this event loop."""

    async def receive() -> dict[str, Any]:
        return _REQUEST

    async def send(message: Any) -> None:
        pass

    for _ in range(n):
        await app({**_SCOPE, "headers": headers, "state": {}}, receive, send)


# Every yardstick makes its value current in ops-session's own variable, as ops-session does. A
# Context lookup walks a map keyed by each set variable's address-based hash, so a variable of
# a yardstick's own would change what every ContextVar the app reads costs (Flask reads several
# a request): by up to 2,000 instructions a request under Flask, either way, with the layout.
SESSION_VARIABLE = cast("ContextVar[Any]", _current_session)


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

        token = SESSION_VARIABLE.set(scope)
        try:
            await self.app(scope, receive, send_through)
        finally:
            SESSION_VARIABLE.reset(token)


HEADER_KEY = SESSION_HEADER_NAME.lower().encode("latin-1")
# Servers should lower-case request header names but need not, and should otherwise keep their
# case (ASGI HTTP spec): a middleware that reads only the lower-case name misses the header from
# such a server, so reading it in any case is one of the required steps. Names of another
# length are skipped first, and one of the same length is compared as it is before lowering.
HEADER_LENGTH = len(HEADER_KEY)
valid_id = VALID_SESSION_ID.fullmatch
# The slots' own setters, as ops-session's policy builds a session whose id is checked already
# (shared with the step table, whose steps must not add calls of their own).
set_session_id = SessionContext.__dict__["id"].__set__
set_session_attributes = SessionContext.__dict__["attributes"].__set__
new_instance = object.__new__


class RequiredStepsMiddleware:
    """Every step a middleware with ops-session's behaviour must take, inline, and no more.

    It reads the session header in any case, checks the id with the default validator's regex
    (generating one when it is missing or invalid), builds the frozen `SessionContext` through
    its slots' setters, makes it current, and adds the header to the response start in a new
    message unless the app set its own (in any case). It has no options, no scope state and no
    error notes: its cost is the limit of any goal that compares ops-session with the floor.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
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
                    if len(name) == HEADER_LENGTH and name.lower() == HEADER_KEY:
                        break
                else:
                    message = dict(message)
                    message["headers"] = [*headers, response_header]
            return send(message)  # type: ignore[no-any-return]

        token = SESSION_VARIABLE.set(context)
        try:
            await self.app(scope, receive, send_with_header)
        finally:
            SESSION_VARIABLE.reset(token)


_logger = logging.getLogger("benchmarks.required")
STATE_KEY = "ops_session"
RESPONSE_START = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)


class RequiredStepsWithDefaults:
    """The required steps, and what ops-session does on top of them by default, inline.

    Besides the required steps, it shows the app the id it runs under in the request's session
    header when that id was generated or replaced (`update_request_header`), checks the log
    level before it would log an invalid id at debug level (its length, never its value),
    keeps the session in the scope's state (`request.state`), gives websockets a session and
    their handshake responses the header, and takes header lists as the ASGI spec allows them:
    any iterable, on the request and the response (an iterator is read once, so it is kept as a
    list), and a scope without them. Where ops-session misses a goal against the required
    steps, its distance from this row is what it adds beyond that behaviour.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            await self.app(scope, receive, send)
            return

        try:
            headers = scope["headers"]
        except KeyError:
            headers = ()
        if type(headers) is not list:
            headers = scope["headers"] = list(headers)
        raw = None
        for name, value in headers:
            if len(name) == HEADER_LENGTH and (name == HEADER_KEY or name.lower() == HEADER_KEY):
                raw = value
                break
        incoming = None if raw is None else raw.decode("latin-1")
        context = new_instance(SessionContext)
        if incoming and valid_id(incoming):
            set_session_id(context, incoming)
            response_header = (HEADER_KEY, raw)
        else:
            if incoming and _logger.isEnabledFor(logging.DEBUG):
                _logger.debug("Invalid session header (%d characters).", len(incoming))
            session_id = generate_session_id()
            set_session_id(context, session_id)
            response_header = (HEADER_KEY, session_id.encode("latin-1"))
            if raw is None:
                scope["headers"] = [*headers, response_header]
            else:
                # Every copy in any case gives way; none comes before the first one read.
                first = headers.index((name, raw))
                kept = headers[:first]
                for pair in headers[first + 1 :]:
                    if len(pair[0]) != HEADER_LENGTH or pair[0].lower() != HEADER_KEY:
                        kept.append(pair)
                kept.append(response_header)
                scope["headers"] = kept
        set_session_attributes(context, None)
        scope["state"][STATE_KEY] = context

        def send_with_header(message: MutableMapping[str, Any]) -> Awaitable[None]:
            if message["type"] in RESPONSE_START:
                try:
                    headers = message["headers"]
                except KeyError:
                    headers = []
                if type(headers) is not list:
                    headers = list(headers)
                    message = dict(message)
                    message["headers"] = headers
                for name, _ in headers:
                    if len(name) == HEADER_LENGTH and name.lower() == HEADER_KEY:
                        break
                else:
                    message = dict(message)
                    message["headers"] = [*headers, response_header]
            return send(message)  # type: ignore[no-any-return]

        token = SESSION_VARIABLE.set(context)
        try:
            await self.app(scope, receive, send_with_header)
        finally:
            SESSION_VARIABLE.reset(token)


class WSGIPassThroughMiddleware:
    """The least a WSGI session middleware does, in the shape of ops-session's own.

    It runs the app in a copied Context where a value was made current, wraps `start_response`
    in a function that only calls through, and returns the body wrapped so that the server's
    iteration and `close()` run in that same Context. It reads no header and adds none, so its
    cost is the floor under every WSGI middleware that keeps a session current for the body too.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        def start_response_through(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
        ) -> Any:
            return start_response(status, headers, exc_info)

        context = contextvars.copy_context()
        context.run(SESSION_VARIABLE.set, environ)
        body = context.run(self.app, environ, start_response_through)
        return BodyInContext(body, context)


class BodyInContext:
    """A response body whose iteration and `close()` run in the request's Context."""

    __slots__ = ("_body", "_context", "_iterator")

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        self._body = body
        self._context = context
        self._iterator: Iterator[bytes] = context.run(iter, body)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self._context.run(next, self._iterator)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._context.run(close)


_ENVIRON_KEY = "HTTP_" + SESSION_HEADER_NAME.upper().replace("-", "_")
_HEADER_LOWER = SESSION_HEADER_NAME.lower()


class AnsweringWithTheId:
    """Then adding the header to the response's headers, unless the app set it.

    This is every step a WSGI middleware with ops-session's behaviour must take, and no more.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        incoming = environ.get(_ENVIRON_KEY)
        session_id = incoming if incoming and valid_id(incoming) else generate_session_id()
        context = new_instance(SessionContext)
        set_session_id(context, session_id)
        set_session_attributes(context, None)
        response_header = (SESSION_HEADER_NAME, session_id)

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
        request_context.run(SESSION_VARIABLE.set, context)
        body = request_context.run(self.app, environ, start_response_with_header)
        return BodyInContext(body, request_context)


class WSGIRequiredStepsWithDefaults:
    """The WSGI required steps, and what ops-session does on top of them by default, inline.

    Besides the required steps, it shows the app the id it runs under in the environ when that
    id was generated or replaced (`update_request_header`), and checks the log level before it
    would log an invalid id at debug level (its length, never its value).
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        incoming = environ.get(_ENVIRON_KEY)
        if incoming and valid_id(incoming):
            session_id = incoming
        else:
            if incoming and _logger.isEnabledFor(logging.DEBUG):
                _logger.debug("Invalid session header (%d characters).", len(incoming))
            session_id = environ[_ENVIRON_KEY] = generate_session_id()
        context = new_instance(SessionContext)
        set_session_id(context, session_id)
        set_session_attributes(context, None)
        response_header = (SESSION_HEADER_NAME, session_id)

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
        request_context.run(SESSION_VARIABLE.set, context)
        body = request_context.run(self.app, environ, start_response_with_header)
        return BodyInContext(body, request_context)
