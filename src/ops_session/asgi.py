"""ASGI middleware: every HTTP request and websocket runs inside a session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._core import SESSION_HEADER_NAME, generate_session_id, is_valid_session_id
from ._policy import Attributes, OnInvalid, SessionPolicy

# Shaped like starlette.types, so that `app.add_middleware(SessionMiddleware)` type-checks.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY = "ops_session"
"""Key of the request's `SessionContext` in `scope["state"]` (Starlette's `request.state`)."""

_RESPONSE_START = frozenset({"http.response.start", "websocket.accept"})
_WEBSOCKET_POLICY_VIOLATION = 1008


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
        update_request_header: When the id was generated, show the app the effective id in
            the request headers, so that other middleware reads the same value.

    Raises:
        TypeError, ValueError: An option is not one of the allowed values.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header_name: str = SESSION_HEADER_NAME,
        generator: Callable[[], str] = generate_session_id,
        validator: Callable[[str], bool] = is_valid_session_id,
        on_invalid: OnInvalid = "generate",
        attributes: Attributes[Scope] | None = None,
        update_request_header: bool = True,
    ) -> None:
        self.app = app
        self.policy: SessionPolicy[Scope] = SessionPolicy(
            header_name=header_name,
            generator=generator,
            validator=validator,
            on_invalid=on_invalid,
            attributes=attributes,
            update_request_header=update_request_header,
        )
        # ASGI gives header names as lower-case bytes (asgiref specs/www.rst).
        self._header_key = header_name.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            await self.app(scope, receive, send)
            return

        header_key = self._header_key
        request_headers = scope.get("headers", ())
        incoming: str | None = None
        for name, value in request_headers:
            if name == header_key or (len(name) == len(header_key) and name.lower() == header_key):
                incoming = value.decode("latin-1")
                break

        policy = self.policy
        session_id = policy.resolve_id(incoming)
        if session_id is None:
            await self._reject(scope_type, receive, send)
            return
        response_header = (header_key, session_id.encode("latin-1"))
        if session_id is not incoming and policy.update_request_header:
            # A copy: the server's scope and header list are not ours to change.
            scope = dict(scope)
            scope["headers"] = [
                *(pair for pair in request_headers if pair[0].lower() != header_key),
                response_header,
            ]

        async def send_with_session_header(message: Message) -> None:
            if message["type"] in _RESPONSE_START:
                headers = message.get("headers", ())
                for name, _ in headers:
                    if name.lower() == header_key:
                        break  # the app chose its own value
                else:
                    message["headers"] = [*headers, response_header]
            await send(message)

        with policy.open_session(session_id, scope) as context:
            state = scope.get("state")
            if state is not None:
                # A per-request dict (ASGI lifespan state) that layers outside this middleware
                # share, so a server-error handler can still name the session after it closed.
                state[STATE_KEY] = context
            await self.app(scope, receive, send_with_session_header)

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
