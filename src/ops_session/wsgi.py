"""WSGI middleware: every request, and the iteration of its response body, runs in a session."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Unpack

from ._cookie import SessionCookie
from ._core import (
    SessionContext,
    activate,
    note_session,
    notify_request_started,
    request_listeners,
    require_session,
)
from ._options import SessionOptions
from ._policy import FROM_QUERY, SessionPolicy, new_instance, set_attributes, set_id

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from _typeshed import OptExcInfo

# The response headers the session cookie's rules read (see `_cookie.py`).
_COOKIE_RULE_HEADERS = frozenset({"set-cookie", "cache-control", "vary"})


class SessionMiddleware:
    """Run each WSGI request inside its own `session()`, until the server closes the response.

    The id comes from the request's session header when it is valid, and is generated otherwise;
    the response carries it back in the same header. The session stays current while the app
    runs, while the server iterates the response body (generators, `stream_with_context`) and
    while it calls the body's `close()`.

    Example:
        app = Flask(__name__)
        app.wsgi_app = SessionMiddleware(app.wsgi_app)

    WSGI servers fold a repeated header into one comma-separated value, which is not a valid id:
    such a request gets a generated id.

    Args:
        app: The WSGI application to wrap.
        **options: The options every entry point shares, each described in `SessionOptions`:
            `header_name`, `generator`, `validator`, `on_invalid`, `attributes` (a callable
            receives the WSGI environ), `update_request_header` (the effective id is written to
            `environ["HTTP_MIRASCOPE_SESSION_ID"]`), `also_accept`, `query_param`, `cookie`,
            `set_cookie` (`Secure` when `wsgi.url_scheme` is https as the response starts),
            `cookie_max_age`, `baggage` (reads the id from W3C baggage too; needs
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
        "_environ_key",
        "_header_lower",
        "_plain_check",
        "_plain_new_id",
    )

    def __init__(
        self, app: WSGIApplication, **options: Unpack[SessionOptions[WSGIEnvironment]]
    ) -> None:
        self.app = app
        self.policy: SessionPolicy[WSGIEnvironment] = SessionPolicy(
            reader=_ENVIRON_READER, where="WSGISessionMiddleware()", **options
        )
        header_name = self.policy.header_name
        self._environ_key = "HTTP_" + header_name.upper().replace("-", "_")
        self._header_lower = header_name.lower()
        self._plain_check, self._plain_new_id = self.policy.plain_decisions()
        # What each request's Context runs: the app, inside the baggage layer when that is on,
        # so that a request pays for the option only when it is set.
        self._inner: WSGIApplication = app
        if (attach_baggage := self.policy.attach_baggage) is not None:
            self._inner = _with_session_baggage(app, attach_baggage)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        policy = self.policy
        incoming = environ.get(self._environ_key)
        # The common cases decided here rather than in `session_for`: one call less a request.
        plain_check = self._plain_check
        origin: int = False
        if incoming and plain_check is not None and plain_check(incoming):
            session_context = new_instance(SessionContext)
            set_id(session_context, incoming)
            set_attributes(session_context, policy.constant_attributes)
        else:
            if (plain_new_id := self._plain_new_id) is not None:  # no other place to look
                session_id = (
                    plain_new_id() if not incoming else policy.plain_replacement_id(incoming)
                )
                if session_id is None:
                    return self._reject(environ, start_response)
                session_context = new_instance(SessionContext)
                set_id(session_context, session_id)
                set_attributes(session_context, policy.constant_attributes)
                origin = True
            else:
                decision = (
                    policy.session_for(incoming, environ)
                    if plain_check is None
                    else policy.replacement_session(incoming, environ)  # checked already
                )
                if decision is None:
                    return self._reject(environ, start_response)
                session_context, origin = decision
            if origin and policy.update_request_header:
                environ[self._environ_key] = session_context.id
        response_header = (policy.header_name, session_context.id)
        header_lower = self._header_lower
        if policy.per_response:
            # Wrapped around the server's start_response, inside the header's wrapper: decided
            # as the response starts, from the environ as the layers inside this one left it.
            cookie = policy.session_cookie
            # A link can carry a query parameter to anyone: such an id never goes into the cookie.
            if cookie is not None and origin != FROM_QUERY:
                start_response = _start_response_with_cookie(
                    start_response, cookie, environ, response_header
                )
            if policy.attributes is not None:
                start_response = _start_response_watching_the_client(
                    start_response, environ, policy
                )

        def start_response_with_session_header(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: OptExcInfo | None = None,
            /,
        ) -> Callable[[bytes], object]:
            for name, _ in headers:
                if name.lower() == header_lower:
                    break  # the app chose its own value
            else:
                headers = [*headers, response_header]
            return start_response(status, headers, exc_info)

        # One Context per request holds the session for the call, every next() and close():
        # the server iterates the body after we return, possibly in another context, and a
        # ContextVar token must not be reset outside the Context that set it (otel-python#2606).
        # The Context is dropped with the response, so the session is never reset inside it.
        context = contextvars.copy_context()
        context.run(activate, session_context)
        if request_listeners:
            context.run(notify_request_started, session_context)
        try:
            body = context.run(self._inner, environ, start_response_with_session_header)
        except Exception as error:
            # The server logs this traceback outside the session: the note names it there.
            note_session(error, session_context)
            raise
        body_type = type(body)
        if body_type is list or body_type is tuple:
            return body  # iterating it runs no app code, and servers may use its len()
        file_wrapper = environ.get("wsgi.file_wrapper")
        # `is not None` first: isinstance(None, type) costs a request hundreds of instructions.
        if (
            file_wrapper is not None
            and isinstance(file_wrapper, type)
            and isinstance(body, file_wrapper)
        ):
            return body  # let the server send the file its own way (sendfile)
        return _SessionBody(body, context)

    def _reject(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        policy = self.policy
        rejection = policy.rejection_body
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(rejection))),
        ]
        if policy.session_cookie is not None and policy.invalid_cookie(environ):
            # Otherwise the browser sends the stale cookie, and is refused, until it expires.
            secure = environ.get("wsgi.url_scheme") == "https"
            headers.append(("Set-Cookie", policy.session_cookie.clearing(secure)))
        start_response("400 Bad Request", headers)
        return [rejection]


def _start_response_with_cookie(
    start_response: StartResponse,
    cookie: SessionCookie,
    environ: WSGIEnvironment,
    response_header: tuple[str, str],
) -> StartResponse:
    """Wrap `start_response` to add what the session cookie adds wherever the header was added.

    Decided as the response starts, from the environ as the layers inside this one left it:
    werkzeug's `ProxyFix` in there may have corrected `wsgi.url_scheme` since the request began.
    """

    def start_response_with_cookie(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        # The list the middleware built, ending with its header: the app did not set its own.
        if headers and headers[-1] is response_header:
            app_headers = [
                (name.lower(), value)
                for name, value in headers
                if name.lower() in _COOKIE_RULE_HEADERS
            ]
            secure = environ.get("wsgi.url_scheme") == "https"
            headers.extend(cookie.headers_for(response_header[1], secure, app_headers))
        return start_response(status, headers, exc_info)

    return start_response_with_cookie


def _start_response_watching_the_client(
    start_response: StartResponse, environ: WSGIEnvironment, policy: SessionPolicy[WSGIEnvironment]
) -> StartResponse:
    """Wrap `start_response` to notice an inner layer that changed `REMOTE_ADDR`."""
    client = environ.get("REMOTE_ADDR")

    def start_response_watching_the_client(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        if environ.get("REMOTE_ADDR") != client:
            policy.client_changed()
        return start_response(status, headers, exc_info)

    return start_response_watching_the_client


def _with_session_baggage(
    app: WSGIApplication, attach: Callable[[str], object | None]
) -> WSGIApplication:
    """Run `app` with the current session's id in OpenTelemetry baggage (the `baggage` option).

    `attach` (`SessionPolicy.attach_baggage`) asks the outgoing rule whether the id goes in.
    Like the session, the entry is never detached: the request's Context, which the body is
    iterated and closed in too, is dropped with the response.
    """

    def app_with_session_baggage(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        attach(require_session().id)
        return app(environ, start_response)

    return app_with_session_baggage


class _EnvironReader:
    """Reads the other places an id may come from in a WSGI environ (see `also_accept`)."""

    __slots__ = ()

    def header(self, environ: WSGIEnvironment, name: str) -> str | None:
        value: str | None = environ.get("HTTP_" + name.upper().replace("-", "_"))
        return value

    def query_string(self, environ: WSGIEnvironment) -> str:
        query_string: str = environ.get("QUERY_STRING", "")
        return query_string

    def cookie_header(self, environ: WSGIEnvironment) -> str | None:
        cookie_header: str | None = environ.get("HTTP_COOKIE")
        return cookie_header


_ENVIRON_READER = _EnvironReader()


_END: Any = object()
"""What `next` returns at the end of a body: no chunk is this object."""


class _SessionBody:
    """The app's response body, iterated and closed inside the request's Context."""

    __slots__ = ("_body", "_context", "_iterator")

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        # None once closed: the app's close() runs once, whether iteration or the server ends it.
        self._body: Iterable[bytes] | None = body
        self._context = context
        self._iterator: Iterator[bytes] = context.run(iter, body)

    def __iter__(self) -> Iterator[bytes]:
        # A generator rather than __next__: no new frame per chunk, and the end of the body
        # raises no StopIteration through a handler of ours.
        context, iterator = self._context, self._iterator
        try:
            while (chunk := context.run(next, iterator, _END)) is not _END:
                yield chunk
        except Exception:
            # PEP 3333 leaves close() to the server; make sure of it when iteration fails.
            self.close()
            raise

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._body = None
            self._context.run(close)
