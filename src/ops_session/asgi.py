"""ASGI middleware: every HTTP request and websocket runs inside a session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Unpack

from ._cookie import SessionCookie
from ._core import (
    SessionContext,
    activate,
    deactivate,
    note_session,
    notify_request_started,
    request_listeners,
    require_session,
)
from ._options import SessionOptions
from ._policy import FROM_QUERY, SessionPolicy, new_instance, set_attributes, set_id

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

# Every message that starts a response, including the websocket denial response extension.
_RESPONSE_START = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)
_WEBSOCKET_POLICY_VIOLATION = 1008
_SECURE_SCHEMES = frozenset({"https", "wss"})
# The response headers the session cookie's rules read (see `_cookie.py`).
_COOKIE_RULE_HEADERS = frozenset({b"set-cookie", b"cache-control", b"vary"})
_COOKIE_RULE_LENGTHS = frozenset(len(name) for name in _COOKIE_RULE_HEADERS)
# The names `SessionCookie.headers_for` adds, as ASGI header names.
_COOKIE_HEADER_KEYS = {
    "Cache-Control": b"cache-control",
    "Set-Cookie": b"set-cookie",
    "Vary": b"vary",
}


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
        **options: The options every entry point shares, each described in `SessionOptions`:
            `header_name`, `generator`, `validator`, `on_invalid`, `attributes` (a callable
            receives the ASGI scope), `update_request_header`, `also_accept`, `query_param`,
            `cookie`, `set_cookie` (`Secure` when the scheme is https or wss as the response
            starts), `cookie_max_age`, `baggage` (reads the id from W3C baggage too; needs
            'ops-session[otel]').

    Raises:
        TypeError, ValueError: An option is unknown (the message names the closest one) or not
            one of the allowed values.
    """

    # Nothing per request lives on the middleware: each request's state stays in its own call.
    __slots__ = (
        "app",
        "policy",
        "_inner",
        "_header_key",
        "_header_length",
        "_plain_check",
        "_plain_new_id",
    )

    def __init__(self, app: _AnyASGIApp, **options: Unpack[SessionOptions[Scope]]) -> None:
        self.app = app
        self.policy: SessionPolicy[Scope] = SessionPolicy(
            reader=_SCOPE_READER, where="SessionMiddleware()", **options
        )
        # Header names are bytes in ASGI, compared here in lower case.
        self._header_key = self.policy.header_name.lower().encode("latin-1")
        self._header_length = len(self._header_key)
        # The common cases, decided here rather than in `session_for`: one call less a request.
        self._plain_check, self._plain_new_id = self.policy.plain_decisions()
        # What each request's session runs: the app, inside the baggage layer when that is on,
        # so that a request pays for the option only when it is set.
        self._inner: _AnyASGIApp = app
        if (attach_baggage := self.policy.attach_baggage) is not None:
            self._inner = _with_session_baggage(app, attach_baggage, self.policy.detach_baggage)

    # `Any`: frameworks type the scope and messages their own way (see `_AnyASGIApp`).
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            await self.app(scope, receive, send)
            return

        header_key = self._header_key
        try:
            request_headers = scope["headers"]
        except KeyError:
            request_headers = ()
        if type(request_headers) is not list:
            # Any iterable is allowed (ASGI spec), and an iterator is read once: keep the list,
            # for the readers of other places and for the app.
            request_headers = scope["headers"] = list(request_headers)
        raw_incoming: bytes | None = None
        length = self._header_length
        # One pass, in any case: servers should lower-case header names but need not, and should
        # otherwise keep their case (ASGI HTTP spec). A name of another length is not the header;
        # one of the same length is compared as it is before a lower-cased copy is made.
        for name, value in request_headers:
            if len(name) == length and (name == header_key or name.lower() == header_key):
                raw_incoming = value
                break

        policy = self.policy
        plain_check = self._plain_check
        origin: int = False
        if raw_incoming is not None:
            # Answered with the bytes that arrived, not re-encoded, unless replaced below.
            response_header = (header_key, raw_incoming)
            incoming = raw_incoming.decode("latin-1")
            if plain_check is not None and plain_check(incoming):
                context = new_instance(SessionContext)
                set_id(context, incoming)
                set_attributes(context, policy.constant_attributes)
            elif (plain_new_id := self._plain_new_id) is not None:  # no other place to look
                # Refused, or empty: an empty value counts as missing.
                session_id = policy.plain_replacement_id(incoming) if incoming else plain_new_id()
                if session_id is None:
                    await self._reject(scope, receive, send)
                    return
                context = new_instance(SessionContext)
                set_id(context, session_id)
                set_attributes(context, policy.constant_attributes)
                origin = True
            else:
                decision = (
                    policy.session_for(incoming, scope)
                    if plain_check is None
                    else policy.replacement_session(incoming, scope)  # checked already
                )
                if decision is None:
                    await self._reject(scope, receive, send)
                    return
                context, origin = decision
        else:
            plain_new_id = self._plain_new_id
            if plain_new_id is not None:
                context = new_instance(SessionContext)
                set_id(context, plain_new_id())
                set_attributes(context, policy.constant_attributes)
                origin = True
            else:
                decision = policy.replacement_session(None, scope)
                if decision is None:
                    await self._reject(scope, receive, send)
                    return
                context, origin = decision
        if origin:
            response_header = (header_key, context.id.encode("latin-1"))
            if policy.update_request_header:
                # The scope is changed in place, as uvicorn and Starlette's router do, so that
                # what the app writes into it (route, endpoint, path_params) reaches the layers
                # outside this one; only the header list is new, the server's is left as it was.
                scope["headers"] = (
                    [*request_headers, response_header]
                    if raw_incoming is None
                    else _replacing_the_header(
                        request_headers, (name, raw_incoming), response_header
                    )
                )
        if policy.per_response:
            # Wrapped around the server's send, inside the header's wrapper: decided as the
            # response starts, from the scope as the layers inside this one left it.
            send = _send_for_the_response(send, scope, policy, context.id, origin, response_header)
        # The per-request state dict (Starlette's request.state) that layers outside this one
        # share, so that a server-error handler can still name the session after it closed.
        try:
            scope["state"][STATE_KEY] = context
        except (KeyError, TypeError):
            if scope.get("state") is not None:
                raise
            scope["state"] = {STATE_KEY: context}

        # A plain function that returns the server's awaitable: the app awaits that directly,
        # without a coroutine of ours in between for every message.
        def send_with_session_header(message: Message) -> Awaitable[None]:
            if message["type"] in _RESPONSE_START:
                try:
                    headers = message["headers"]
                except KeyError:
                    headers = []
                if type(headers) is not list:
                    # An iterator is read once: the response must carry the list read here.
                    headers = list(headers)
                    message = dict(message)
                    message["headers"] = headers
                # When the app chose its own value, it stands (in any case: apps may write
                # names as they like). The name is read from the header to add, so that the
                # request's own loop above keeps its locals fast rather than shared with this.
                key = response_header[0]
                key_length = len(key)
                for name, _ in headers:
                    if len(name) == key_length and name.lower() == key:
                        break
                else:
                    # A new message: the app may send the same dict again for another request.
                    message = dict(message)
                    message["headers"] = [*headers, response_header]
            return send(message)  # type: ignore[no-any-return]  # the server's, typed by none

        token = activate(context)
        try:
            if request_listeners:
                notify_request_started(context)
            await self._inner(scope, receive, send_with_session_header)
        except Exception as error:
            # The server logs this traceback after the session closed: the note names it there.
            note_session(error, context)
            raise
        finally:
            deactivate(token)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": _WEBSOCKET_POLICY_VIOLATION})
            return
        policy = self.policy
        body = policy.rejection_body
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        if policy.session_cookie is not None and policy.invalid_cookie(scope):
            # Otherwise the browser sends the stale cookie, and is refused, until it expires.
            clearing = policy.session_cookie.clearing(scope.get("scheme") in _SECURE_SCHEMES)
            headers.append((b"set-cookie", clearing.encode("latin-1")))
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _with_session_baggage(
    app: _AnyASGIApp,
    attach: Callable[[str], object | None],
    detach: Callable[[Any], None],
) -> _AnyASGIApp:
    """Run `app` with the current session's id in OpenTelemetry baggage (the `baggage` option).

    `attach` (`SessionPolicy.attach_baggage`) asks the outgoing rule whether the id goes in, and
    gives `None` when it does not; otherwise the entry is detached as the app returns, whatever
    it raised.
    """

    async def app_with_session_baggage(scope: Any, receive: Any, send: Any) -> None:
        token = attach(require_session().id)
        try:
            await app(scope, receive, send)
        finally:
            if token is not None:
                detach(token)

    return app_with_session_baggage


def _replacing_the_header(
    request_headers: list[tuple[bytes, bytes]],
    read: tuple[bytes, bytes],
    effective: tuple[bytes, bytes],
) -> list[tuple[bytes, bytes]]:
    """The request's headers with `effective` in place of every copy of the session header.

    `read` is the pair the middleware read the refused id from: the first copy, in any case, so
    the pairs before it hold none.
    """
    key = effective[0]
    length = len(key)
    try:
        first = request_headers.index(read)
    except ValueError:  # pairs that are not tuples: look at every one
        kept, rest = [], request_headers
    else:
        kept, rest = request_headers[:first], request_headers[first + 1 :]
    for pair in rest:
        if len(pair[0]) != length or pair[0].lower() != key:
            kept.append(pair)
    kept.append(effective)
    return kept


def _send_for_the_response(
    send: Send,
    scope: Scope,
    policy: SessionPolicy[Scope],
    session_id: str,
    origin: int,
    response_header: tuple[bytes, bytes],
) -> Send:
    """Wrap the server's `send` for the options that act as the response starts (`per_response`)."""
    cookie = policy.session_cookie
    # A link can carry a query parameter to anyone: such an id never goes into the cookie.
    if cookie is not None and origin != FROM_QUERY:
        send = _send_with_cookie(send, cookie, session_id, scope, response_header)
    if policy.attributes is not None:
        send = _send_watching_the_client(send, scope, policy)
    return send


def _send_with_cookie(
    send: Send,
    cookie: SessionCookie,
    session_id: str,
    scope: Scope,
    response_header: tuple[bytes, bytes],
) -> Send:
    """Wrap the server's `send` to add what the session cookie adds wherever the header was added.

    Decided as the response starts, from the scope as the layers inside this one left it:
    a `ProxyHeadersMiddleware` in there may have corrected the scheme since the request began.
    """

    def send_with_cookie(message: Message) -> Awaitable[None]:
        if message["type"] in _RESPONSE_START:
            headers = message.get("headers")
            # The list the middleware built, ending with its header: the app did not set its own.
            if headers and headers[-1] is response_header:
                app_headers = []
                for name, value in headers:
                    # Only names of those lengths are lowered and looked up.
                    if len(name) in _COOKIE_RULE_LENGTHS and (lowered := name.lower()) in (
                        _COOKIE_RULE_HEADERS
                    ):
                        app_headers.append((lowered.decode("latin-1"), value.decode("latin-1")))
                secure = scope.get("scheme") in _SECURE_SCHEMES
                for name, value in cookie.headers_for(session_id, secure, app_headers):
                    headers.append((_COOKIE_HEADER_KEYS[name], value.encode("latin-1")))
        return send(message)

    return send_with_cookie


def _send_watching_the_client(send: Send, scope: Scope, policy: SessionPolicy[Scope]) -> Send:
    """Wrap `send` to notice, as the response starts, an inner layer that changed the client."""
    client = scope.get("client")

    def send_watching_the_client(message: Message) -> Awaitable[None]:
        if message["type"] in _RESPONSE_START and scope.get("client") != client:
            policy.client_changed()
        return send(message)

    return send_watching_the_client


class _ScopeReader:
    """Reads the other places an id may come from in an ASGI scope (see `also_accept`).

    Header names are read in any case, one pass each, as the session header is.
    """

    __slots__ = ()

    def header(self, scope: Scope, name: str) -> str | None:
        key = _header_keys.get(name)
        if key is None:
            key = _header_keys[name] = name.lower().encode("latin-1")
        length = len(key)
        for found, value in scope.get("headers", ()):
            if len(found) == length and (found == key or found.lower() == key):
                return value.decode("latin-1")  # type: ignore[no-any-return]
        return None

    def query_string(self, scope: Scope) -> str:
        query_string: bytes = scope.get("query_string", b"")
        return query_string.decode("latin-1")

    def cookie_header(self, scope: Scope) -> str | None:
        # HTTP/2 may split the cookie into several fields (RFC 9113, 8.2.3).
        values = None
        for name, value in scope.get("headers", ()):
            if len(name) == 6 and (name == b"cookie" or name.lower() == b"cookie"):
                if values is None:
                    values = [value.decode("latin-1")]
                else:
                    values.append(value.decode("latin-1"))
        return None if values is None else "; ".join(values)


# The names the options give (`also_accept`, baggage), as header keys: a few, never request data.
_header_keys: dict[str, bytes] = {}


_SCOPE_READER = _ScopeReader()
