"""aiohttp: run each request of its own web server in a session, and send the session's id
with the requests of its client.  [extra: aiohttp]

aiohttp's server is not ASGI, so the server side is a native middleware over the policy the
ASGI and WSGI middlewares share (`_policy.SessionPolicy`): this module only translates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import SimpleNamespace
from typing import Any

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
    SESSION_HEADER_NAME,
    SessionContext,
    activate,
    deactivate,
    generate_session_id,
    is_valid_session_id,
    notify_request_started,
    request_listeners,
    session_note,
)
from ._outgoing import client_rule, update_session_header
from ._policy import DEFAULT_COOKIE_MAX_AGE, Attributes, OnInvalid, SessionPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

logger = logging.getLogger("ops_session")

# aiohttp 3.13 warns about string keys in a request's storage and offers typed keys instead.
STATE_KEY: Any = (
    web.RequestKey("ops_session", SessionContext) if hasattr(web, "RequestKey") else "ops_session"
)
"""Key of the request's `SessionContext` in its storage: `request[STATE_KEY]`."""


def setup(app: web.Application, **options: object) -> SessionMiddleware:
    """Run every request of `app`, its sub-applications included, in a session.

    Adds a `SessionMiddleware` built from `options` (its keyword arguments) to the app's
    middlewares and its `on_response_prepare` signal, the two places it needs, as
    `aiohttp_session.setup` and `aiohttp_cors.setup` do. Call it before the app starts.

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
    middleware = SessionMiddleware(**options)  # type: ignore[arg-type]
    app.middlewares.append(middleware)
    app.on_response_prepare.append(middleware.on_response_prepare)
    return middleware


class SessionMiddleware:
    """An aiohttp server middleware: each request, stream and websocket runs in a session.

    The id comes from the request's session header when it is valid and is generated
    otherwise. Every response carries it back in the same header, unless the handler set that
    header itself: responses the handler returns or raises (`web.HTTPException`), the 500 that
    aiohttp makes from an unhandled exception, and `StreamResponse` and `WebSocketResponse`
    objects the handler prepares itself, since the header is added in `on_response_prepare`,
    when aiohttp sends the headers. Use `setup(app, **options)`, which registers both parts.

    Not to be confused with `aiohttp_session`'s cookie-based sessions.

    Args:
        header_name: The request and response header that carries the session id.
        generator: Makes an id when the request has none (or an invalid one).
        validator: Decides whether an incoming id is acceptable. A custom validator only sees
            values of 1 to 1024 printable ASCII characters without spaces.
        on_invalid: `"generate"` replaces an invalid incoming id with a generated one;
            `"reject"` answers 400 without calling the handler.
        attributes: Session attributes: a mapping, or a callable that computes them from each
            `web.Request`. They reach traces, so keep secrets out of them.
        update_request_header: When the id was generated (or read from another place), the
            handler gets a clone of the request (`request.clone`) whose session header holds
            the effective id.
        also_accept: Other request header names to read the id from when `header_name` holds
            no valid one, in order; the first valid value wins.
        query_param: The query parameter to read the id from when no session header is present.
        cookie: The cookie to read the id from when no session header (nor query parameter)
            is present.
        set_cookie: Also send the session as that cookie wherever the session header is sent.
        cookie_max_age: The cookie's lifetime in seconds after the last response (one day).

    Raises:
        TypeError, ValueError: An option is not one of the allowed values.
    """

    # Marks a new-style middleware for aiohttp before 4.0 (what `@web.middleware` sets).
    __middleware_version__ = 1
    __slots__ = ("policy",)

    def __init__(
        self,
        *,
        header_name: str = SESSION_HEADER_NAME,
        generator: Callable[[], str] = generate_session_id,
        validator: Callable[[str], bool] = is_valid_session_id,
        on_invalid: OnInvalid = "generate",
        attributes: Attributes[web.Request] | None = None,
        update_request_header: bool = True,
        also_accept: Sequence[str] = (),
        query_param: str | None = None,
        cookie: str | None = None,
        set_cookie: bool = False,
        cookie_max_age: int = DEFAULT_COOKIE_MAX_AGE,
    ) -> None:
        self.policy: SessionPolicy[web.Request] = SessionPolicy(
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
            reader=_REQUEST_READER,
        )

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        policy = self.policy
        decision = policy.session_for(request.headers.get(policy.header_name), request)
        if decision is None:
            return web.Response(
                status=400, body=policy.rejection_body, content_type="text/plain", charset="utf-8"
            )
        context, generated = decision
        # The signal finds the session here, whichever request object the response is for.
        request[STATE_KEY] = context
        if generated and policy.update_request_header:
            headers = CIMultiDict(request.headers)
            headers[policy.header_name] = context.id  # replaces every incoming value
            try:
                request = request.clone(headers=headers)
            except RuntimeError:
                # A middleware outside this one read the body, and aiohttp refuses to clone
                # such a request: the handler sees the incoming headers, in the same session.
                logger.debug("Generated session id not shown to the handler: body read already.")
            else:
                request[STATE_KEY] = context
        # Set and reset in this one frame: aiohttp runs a connection's requests in one task.
        token = activate(context)
        try:
            if request_listeners:
                notify_request_started(context)
            return await handler(request)
        except web.HTTPException:
            raise  # a response, which aiohttp sends without logging it
        except Exception as error:
            # aiohttp logs this traceback after the session closed: the note names it there.
            error.add_note(session_note(context))
            raise
        finally:
            deactivate(token)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add the session header (and cookie) to a response just before its headers are sent."""
        context: SessionContext | None = request.get(STATE_KEY)
        policy = self.policy
        if context is None or policy.header_name in response.headers:
            return  # not in a session (rejected), or the handler chose its own value
        response.headers[policy.header_name] = context.id
        if policy.set_cookie:
            cookie = policy.set_cookie_header(context.id, request.secure)
            if cookie is not None:
                response.headers.add("Set-Cookie", cookie)


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
    the one added to an earlier hop. A session header you set yourself is sent as you set it.
    Outside a session nothing changes.

    Args:
        hosts: Host patterns that may receive the session id (`"*.internal"`,
            `"api.mycorp.com"`, `"10.0.0.7"`); `None` follows the process-wide rule
            (`set_outgoing_hosts`, `OPS_SESSION_OUTGOING_HOSTS`), which allows every host
            unless set.

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
        # `context` lives for one request, redirects included, and belongs to this config alone.
        context.sent_session_id = update_session_header(
            params.headers, params.url.raw_host or "", self.hosts, None
        )

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
        context.sent_session_id = update_session_header(
            params.headers, host, self.hosts, context.sent_session_id
        )
