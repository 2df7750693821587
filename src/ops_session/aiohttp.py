"""aiohttp: run each request of its own web server in a session, and send the session's id
with the requests of its client.  [extra: aiohttp]

aiohttp's server is not ASGI, so the server side is a native middleware over the policy the
ASGI and WSGI middlewares share (`_policy.SessionPolicy`): this module only translates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from types import SimpleNamespace
from typing import Any, Unpack

try:
    import aiohttp
    from aiohttp import web
    from multidict import CIMultiDict
    from yarl import URL
except ImportError as error:
    raise ImportError(
        "ops_session.aiohttp needs aiohttp: install 'ops-session[aiohttp]'."
    ) from error

from ._core import (
    SessionContext,
    activate,
    deactivate,
    note_session,
    notify_request_started,
    request_listeners,
)
from ._options import SessionOptions
from ._outgoing import update_session_header
from ._policy import FROM_QUERY, SessionPolicy
from ._rules import client_rule

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

logger = logging.getLogger("ops_session")

# aiohttp 3.13 warns about string keys in a request's storage and offers typed keys instead.
STATE_KEY: Any = (
    web.RequestKey("ops_session", SessionContext) if hasattr(web, "RequestKey") else "ops_session"
)
"""Key of the request's `SessionContext` in its storage: `request[STATE_KEY]`."""
_COOKIE_KEY: Any = (
    web.RequestKey("ops_session.cookie", bool) if hasattr(web, "RequestKey") else "ops_session.c"
)
"""Whether the response may carry the session cookie (never for an id from the query string)."""
# The response headers the session cookie's rules read (see `SessionCookie.headers_for`).
_COOKIE_RULE_HEADERS = frozenset({"set-cookie", "cache-control", "vary"})


def setup(
    app: web.Application, **options: Unpack[SessionOptions[web.Request]]
) -> SessionMiddleware:
    """Run every request of `app`, its sub-applications included, in a session.

    Adds a `SessionMiddleware` built from `options` (the options of every entry point, see
    `ops_session.SessionOptions`) to the app's middlewares and its `on_response_prepare`
    signal, the two places it needs, as `aiohttp_session.setup` and `aiohttp_cors.setup` do.
    Call it before the app starts.

    Example:
        app = web.Application()
        setup(app, attributes={"service": "chat"})

    Returns:
        The middleware, whose `policy` holds the checked options.

    Raises:
        RuntimeError: `setup` was already called on `app`.
        TypeError, ValueError: An option is not one of the allowed values.
    """
    if any(isinstance(layer, SessionMiddleware) for layer in app.middlewares):
        raise RuntimeError(f"setup() was already called on {app!r}; call it once per app.")
    middleware = SessionMiddleware(**options)
    app.middlewares.append(middleware)
    app.on_response_prepare.append(middleware.on_response_prepare)
    return middleware


class SessionMiddleware:
    """An aiohttp server middleware: each request, stream and websocket runs in a session.

    The id comes from the request's session header when it is valid (or from the other places
    the options name) and is generated otherwise. Every response carries it back in the same
    header, unless the handler set that header itself: responses the handler returns or raises
    (`web.HTTPException`), the 500 that aiohttp makes from an unhandled exception, and
    `StreamResponse` and `WebSocketResponse` objects the handler prepares itself, since the
    header is added in `on_response_prepare`, when aiohttp sends the headers. Use
    `setup(app, **options)`, which registers both parts.

    Its options are those of every entry point (`ops_session.SessionOptions`), with the same
    defaults and meaning; an `attributes` callable takes the `web.Request`. When the id was
    generated (or read from another place) and `update_request_header` is on, the handler gets
    a clone of the request (`request.clone`) whose session header holds the effective id.

    Not to be confused with `aiohttp_session`'s cookie-based sessions.

    Raises:
        TypeError, ValueError: An option is not one of the allowed values.
    """

    # Marks a new-style middleware for aiohttp before 4.0 (what `@web.middleware` sets).
    __middleware_version__ = 1
    __slots__ = ("policy",)

    def __init__(self, **options: Unpack[SessionOptions[web.Request]]) -> None:
        self.policy: SessionPolicy[web.Request] = SessionPolicy(
            reader=_REQUEST_READER, where="ops_session.aiohttp.SessionMiddleware()", **options
        )

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        policy = self.policy
        decision = policy.session_for(request.headers.get(policy.header_name), request)
        if decision is None:
            return self._reject(request)
        context, origin = decision
        # The signal finds the session here, whichever request object the response is for.
        request[STATE_KEY] = context
        # A link can carry a query parameter to anyone: such an id never goes into the cookie.
        request[_COOKIE_KEY] = policy.session_cookie is not None and origin != FROM_QUERY
        if origin and policy.update_request_header:
            headers = CIMultiDict(request.headers)
            headers[policy.header_name] = context.id  # replaces every incoming value
            try:
                clone = request.clone(headers=headers)
            except RuntimeError:
                # A middleware outside this one read the body, and aiohttp refuses to clone
                # such a request: the handler sees the incoming headers, in the same session.
                logger.debug("Generated session id not shown to the handler: body read already.")
            else:
                clone[STATE_KEY] = context
                clone[_COOKIE_KEY] = request[_COOKIE_KEY]
                request = clone
        # Set and reset in this one frame: aiohttp runs a connection's requests in one task.
        token = activate(context)
        attach_baggage = policy.attach_baggage
        baggage_token = None if attach_baggage is None else attach_baggage(context.id)
        try:
            if request_listeners:
                notify_request_started(context)
            return await handler(request)
        except web.HTTPException:
            raise  # a response, which aiohttp sends without logging it
        except Exception as error:
            # aiohttp logs this traceback after the session closed: the note names it there.
            note_session(error, context)
            raise
        finally:
            if baggage_token is not None:
                policy.detach_baggage(baggage_token)
            deactivate(token)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add the session header (and cookie) to a response just before its headers are sent."""
        context: SessionContext | None = request.get(STATE_KEY)
        policy = self.policy
        if context is None or policy.header_name in response.headers:
            return  # not in a session (rejected), or the handler chose its own value
        response.headers[policy.header_name] = context.id
        cookie = policy.session_cookie
        if cookie is None or not request.get(_COOKIE_KEY):
            return
        # aiohttp has written the response's own cookies into its headers by now.
        app_headers = [
            (name.lower(), value)
            for name, value in response.headers.items()
            if name.lower() in _COOKIE_RULE_HEADERS
        ]
        for name, value in cookie.headers_for(context.id, request.secure, app_headers):
            response.headers.add(name, value)

    def _reject(self, request: web.Request) -> web.Response:
        policy = self.policy
        response = web.Response(
            status=400, body=policy.rejection_body, content_type="text/plain", charset="utf-8"
        )
        if policy.session_cookie is not None and policy.invalid_cookie(request):
            # Otherwise the browser sends the stale cookie, and is refused, until it expires.
            response.headers.add("Set-Cookie", policy.session_cookie.clearing(request.secure))
        return response


class _RequestReader:
    """Reads the other places an id may come from in an aiohttp request (see `also_accept`)."""

    __slots__ = ()

    def header(self, request: web.Request, name: str) -> str | None:
        return request.headers.get(name)

    def query_string(self, request: web.Request) -> str:
        return request.rel_url.raw_query_string  # still percent-encoded, as the policy expects

    def cookie_header(self, request: web.Request) -> str | None:
        values = request.headers.getall("Cookie", [])
        return "; ".join(values) if values else None


_REQUEST_READER = _RequestReader()


class SessionTraceConfig(aiohttp.TraceConfig):
    """An aiohttp `TraceConfig` that adds the session header to a `ClientSession`'s requests.

    aiohttp builds each hop of a request, redirects included, from the one header dict that
    `on_request_start` receives, and reports every redirect through `on_request_redirect` before
    following it: a hop to a host that `hosts` does not allow gets no session header, and loses
    one holding the current session's id. A session header holding another id is yours, and is
    sent as you set it. Outside a session nothing changes.

    Args:
        hosts: Host patterns that may receive the session id (`"*.internal"`,
            `"api.mycorp.com"`, `"10.0.0.7"`); `None` follows the process-wide rule
            (`set_outgoing_hosts`, `OPS_SESSION_OUTGOING_HOSTS`), which allows your own hosts
            (`"@private"`) unless set.

    Raises:
        ValueError: A host pattern, or `OPS_SESSION_OUTGOING_HOSTS` when it applies, is invalid.

    Example:
        aiohttp.ClientSession(trace_configs=[SessionTraceConfig(hosts=["*.internal"])])
    """

    def __init__(self, *, hosts: Iterable[str] | None = None) -> None:
        super().__init__()
        self.hosts = client_rule(hosts)
        self.on_request_start.append(self._add_session_header)
        self.on_request_redirect.append(self._update_on_redirect)

    async def _add_session_header(
        self,
        client: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        update_session_header(params.headers, params.url.raw_host or "", self.hosts)

    async def _update_on_redirect(
        self,
        client: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestRedirectParams,
    ) -> None:
        # `params.url` is the hop just answered; aiohttp follows Location (or URI) from it next.
        headers = params.response.headers
        location = headers.get("Location") or headers.get("URI") or ""
        try:
            host = params.url.join(URL(location)).raw_host or ""
        except ValueError:
            host = ""  # aiohttp refuses this redirect with its own error; no hop follows
        update_session_header(params.headers, host, self.hosts)
