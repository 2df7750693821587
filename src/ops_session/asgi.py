"""ASGI middleware: every HTTP request and websocket runs inside a session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

from ._core import (
    SESSION_HEADER_NAME,
    activate,
    deactivate,
    generate_session_id,
    is_valid_session_id,
    notify_request_started,
    request_listeners,
    session_note,
)
from ._policy import DEFAULT_COOKIE_MAX_AGE, Attributes, OnInvalid, SessionPolicy

# Shaped like starlette.types, so that `app.add_middleware(SessionMiddleware)` type-checks.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# What the middleware wraps and what it is: any ASGI callable, whatever types its framework
# gives the scope and messages (Litestar's and Quart's TypedDicts, Falcon's dicts, Starlette's
# mappings), so that each framework's own way of adding middleware type-checks.
_AnyASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

STATE_KEY = "ops_session"
"""Key of the request's `SessionContext` in `scope["state"]` (Starlette's `request.state`)."""

_SESSION_SCOPES = frozenset({"http", "websocket"})
# Every message that starts a response, including the websocket denial response extension.
_RESPONSE_START = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)
_WEBSOCKET_POLICY_VIOLATION = 1008
_SECURE_SCHEMES = frozenset({"https", "wss"})


class SessionMiddleware:
    """Run each HTTP request and websocket connection inside its own `session()`.

    The id comes from the request's session header when it is valid, and is generated otherwise.
    The response (or the websocket handshake) carries the id back in the same header. Handlers,
    dependencies, streaming bodies and background tasks read it with `current_session()`.
    Lifespan and other scope types pass through untouched.

    Not to be confused with Starlette's cookie-based
    `starlette.middleware.sessions.SessionMiddleware`.

    Example:
        app = FastAPI()
        app.add_middleware(SessionMiddleware)      # or: app = SessionMiddleware(app)

    Args:
        app: The ASGI application to wrap.
        header_name: The request and response header that carries the session id.
        generator: Makes an id when the request has none (or an invalid one).
        validator: Decides whether an incoming id is acceptable. A custom validator only sees
            values of 1 to 1024 printable ASCII characters without spaces.
        on_invalid: `"generate"` replaces an invalid incoming id with a generated one;
            `"reject"` answers 400 (websockets: close code 1008) without calling the app.
        attributes: Session attributes: a mapping, or a callable that computes them from the
            ASGI scope of each request. They reach traces, so keep secrets out of them.
        update_request_header: When the id was generated (or read from another place), show
            the app the effective id in the request headers, so that other middleware reads
            the same value.
        also_accept: Other request header names to read the id from when `header_name` holds
            no valid one, in order; the first valid value wins. Responses only ever carry
            `header_name`.
        query_param: The query parameter to read the id from when no session header is
            present, e.g. `"session_id"` for `new WebSocket("/ws?session_id=...")`.
        cookie: The cookie to read the id from when no session header (nor query parameter)
            is present.
        set_cookie: Also send the session as that cookie on every response:
            `Set-Cookie: <cookie>=<id>; Path=/; Max-Age=<cookie_max_age>; HttpOnly;
            SameSite=Lax`, plus `Secure` when the scheme is https or wss.
        cookie_max_age: The cookie's lifetime in seconds after the last response (one day).

    Raises:
        TypeError, ValueError: An option is not one of the allowed values.
    """

    # Nothing per request lives on the middleware: each request's state stays in its own call.
    __slots__ = ("app", "policy", "_header_key")

    def __init__(
        self,
        app: _AnyASGIApp,
        *,
        header_name: str = SESSION_HEADER_NAME,
        generator: Callable[[], str] = generate_session_id,
        validator: Callable[[str], bool] = is_valid_session_id,
        on_invalid: OnInvalid = "generate",
        attributes: Attributes[Scope] | None = None,
        update_request_header: bool = True,
        also_accept: Sequence[str] = (),
        query_param: str | None = None,
        cookie: str | None = None,
        set_cookie: bool = False,
        cookie_max_age: int = DEFAULT_COOKIE_MAX_AGE,
    ) -> None:
        self.app = app
        self.policy: SessionPolicy[Scope] = SessionPolicy(
            header_name=header_name,
            generator=generator,
            validator=validator,
            on_invalid=on_invalid,
            attributes=attributes,
            update_request_header=update_request_header,
            also_accept=also_accept,
            query_param=query_param,
            cookie=cookie,
            set_cookie=set_cookie,
            cookie_max_age=cookie_max_age,
            reader=_SCOPE_READER,
        )
        # ASGI gives header names as lower-case bytes (asgiref specs/www.rst).
        self._header_key = header_name.lower().encode("latin-1")

    # `Any`: frameworks type the scope and messages their own way (see `_AnyASGIApp`).
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in _SESSION_SCOPES:
            await self.app(scope, receive, send)
            return

        header_key = self._header_key
        request_headers = scope.get("headers", ())
        if type(request_headers) is not list:
            # Any iterable is allowed (ASGI spec); it is read more than once below.
            request_headers = list(request_headers)
        raw_incoming: bytes | None = None
        for name, value in request_headers:
            if name == header_key:
                raw_incoming = value
                break
        else:
            raw_incoming = _find_header_in_any_case(request_headers, header_key)
        incoming = None if raw_incoming is None else raw_incoming.decode("latin-1")

        policy = self.policy
        decision = policy.session_for(incoming, scope)
        if decision is None:
            await self._reject(scope["type"], receive, send)
            return
        context, generated = decision
        if not generated and raw_incoming is not None:
            response_header = (header_key, raw_incoming)  # the bytes that arrived, not re-encoded
        else:
            response_header = (header_key, context.id.encode("latin-1"))
            if policy.update_request_header:
                # The scope is changed in place, as uvicorn and Starlette's router do, so that
                # what the app writes into it (route, endpoint, path_params) reaches the layers
                # outside this one; only the header list is new, the server's is left as it was.
                if incoming is None:
                    scope["headers"] = [*request_headers, response_header]
                else:
                    scope["headers"] = [
                        *(pair for pair in request_headers if pair[0].lower() != header_key),
                        response_header,
                    ]
        server_send: Send = send
        if policy.set_cookie:
            server_send = _send_with_cookie(send, policy, context.id, scope, response_header)
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        # The per-request state dict (Starlette's request.state) that layers outside this one
        # share, so that a server-error handler can still name the session after it closed.
        state[STATE_KEY] = context

        # A plain function that returns the server's awaitable: the app awaits that directly,
        # without a coroutine of ours in between for every message.
        def send_with_session_header(message: Message) -> Awaitable[None]:
            if message["type"] in _RESPONSE_START:
                headers = message.get("headers", ())
                if type(headers) is not list:
                    headers = list(headers)
                # When the app chose its own value, it stands.
                if _find_header_in_any_case(headers, header_key) is None:
                    # A new message: the app may send the same dict again for another request.
                    message = dict(message)
                    message["headers"] = [*headers, response_header]
            return server_send(message)

        token = activate(context)
        try:
            if request_listeners:
                notify_request_started(context)
            await self.app(scope, receive, send_with_session_header)
        except Exception as error:
            # The server logs this traceback after the session closed: the note names it there.
            error.add_note(session_note(context))
            raise
        finally:
            deactivate(token)

    async def _reject(self, scope_type: str, receive: Receive, send: Send) -> None:
        if scope_type == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": _WEBSOCKET_POLICY_VIOLATION})
            return
        body = self.policy.rejection_body
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _send_with_cookie(
    send: Send,
    policy: SessionPolicy[Scope],
    session_id: str,
    scope: Scope,
    response_header: tuple[bytes, bytes],
) -> Send:
    """Wrap the server's `send` to add `Set-Cookie` wherever the session header was added."""
    cookie = policy.set_cookie_header(session_id, scope.get("scheme") in _SECURE_SCHEMES)
    if cookie is None:
        return send
    set_cookie = (b"set-cookie", cookie.encode("latin-1"))

    def send_with_cookie(message: Message) -> Awaitable[None]:
        if message["type"] in _RESPONSE_START:
            headers = message.get("headers")
            # The list the middleware built, ending with its header: the app did not set its own.
            if headers and headers[-1] is response_header:
                headers.append(set_cookie)
        return send(message)

    return send_with_cookie


def _find_header_in_any_case(
    headers: Iterable[tuple[bytes, bytes]], lower_name: bytes
) -> bytes | None:
    """The first value of a header whose name may come in any case, or `None`.

    Servers should, but need not, lower-case request header names (ASGI HTTP spec), so a
    request without the lower-case name gets this second, slower look; apps may write
    response header names in any case.
    """
    length = len(lower_name)
    for name, value in headers:
        if len(name) == length and name.lower() == lower_name:
            return value
    return None


class _ScopeReader:
    """Reads the other places an id may come from in an ASGI scope (see `also_accept`)."""

    __slots__ = ()

    def header(self, scope: Scope, name: str) -> str | None:
        value = _find_header_in_any_case(scope.get("headers", ()), name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")

    def query_string(self, scope: Scope) -> str:
        query_string: bytes = scope.get("query_string", b"")
        return query_string.decode("latin-1")

    def cookie_header(self, scope: Scope) -> str | None:
        # HTTP/2 may split the cookie into several fields (RFC 9113, 8.2.3).
        values = [
            value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if len(name) == 6 and name.lower() == b"cookie"
        ]
        return "; ".join(values) if values else None


_SCOPE_READER = _ScopeReader()
