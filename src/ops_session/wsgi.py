"""WSGI middleware: every request, and the iteration of its response body, runs in a session."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._core import (
    SESSION_HEADER_NAME,
    activate,
    generate_session_id,
    is_valid_session_id,
    notify_request_started,
    request_listeners,
    session_note,
)
from ._policy import DEFAULT_COOKIE_MAX_AGE, Attributes, OnInvalid, SessionPolicy

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from _typeshed import OptExcInfo


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
        header_name: The request and response header that carries the session id.
        generator: Makes an id when the request has none (or an invalid one).
        validator: Decides whether an incoming id is acceptable. A custom validator only sees
            values of 1 to 1024 printable ASCII characters without spaces.
        on_invalid: `"generate"` replaces an invalid incoming id with a generated one;
            `"reject"` answers 400 without calling the app.
        attributes: Session attributes: a mapping, or a callable that computes them from the
            WSGI environ of each request. They reach traces, so keep secrets out of them.
        update_request_header: When the id was generated (or read from another place), write
            the effective id into the environ (`HTTP_MIRASCOPE_SESSION_ID`), so that the app
            reads the same value.
        also_accept: Other request header names to read the id from when `header_name` holds
            no valid one, in order; the first valid value wins. Responses only ever carry
            `header_name`.
        query_param: The query parameter to read the id from when no session header is
            present, e.g. `"session_id"`.
        cookie: The cookie to read the id from when no session header (nor query parameter)
            is present.
        set_cookie: Also send the session as that cookie on every response:
            `Set-Cookie: <cookie>=<id>; Path=/; Max-Age=<cookie_max_age>; HttpOnly;
            SameSite=Lax`, plus `Secure` when `wsgi.url_scheme` is https.
        cookie_max_age: The cookie's lifetime in seconds after the last response (one day).
        baggage: Also read the id from the `session.id` entry of a W3C `baggage` header when no
            session header is present, and put the request's id into OpenTelemetry's baggage
            for the calls it makes (needs 'ops-session[otel]'). Only the id, never the
            attributes; see "Across services and engines" in the README.

    Raises:
        TypeError, ValueError: An option is not one of the allowed values.
    """

    # Nothing per request lives on the middleware: each request's state stays in its own call.
    __slots__ = ("app", "policy", "_environ_key", "_header_lower")

    def __init__(
        self,
        app: WSGIApplication,
        *,
        header_name: str = SESSION_HEADER_NAME,
        generator: Callable[[], str] = generate_session_id,
        validator: Callable[[str], bool] = is_valid_session_id,
        on_invalid: OnInvalid = "generate",
        attributes: Attributes[WSGIEnvironment] | None = None,
        update_request_header: bool = True,
        also_accept: Sequence[str] = (),
        query_param: str | None = None,
        cookie: str | None = None,
        set_cookie: bool = False,
        cookie_max_age: int = DEFAULT_COOKIE_MAX_AGE,
        baggage: bool = False,
    ) -> None:
        self.app = app
        self.policy: SessionPolicy[WSGIEnvironment] = SessionPolicy(
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
            baggage=baggage,
            reader=_ENVIRON_READER,
        )
        self._environ_key = "HTTP_" + header_name.upper().replace("-", "_")
        self._header_lower = header_name.lower()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        policy = self.policy
        incoming = environ.get(self._environ_key)
        decision = policy.session_for(incoming, environ)
        if decision is None:
            rejection = policy.rejection_body
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(rejection))),
                ],
            )
            return [rejection]
        session_context, generated = decision
        if generated and policy.update_request_header:
            environ[self._environ_key] = session_context.id
        response_header = (policy.header_name, session_context.id)
        if policy.set_cookie:
            start_response = _start_response_with_cookie(
                start_response, policy, session_context.id, environ, response_header
            )
        header_lower = self._header_lower

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
        if policy.attach_baggage is not None:
            # Like the session, never detached: the Context is dropped with the response.
            context.run(policy.attach_baggage, session_context.id)
        if request_listeners:
            context.run(notify_request_started, session_context)
        try:
            body = context.run(self.app, environ, start_response_with_session_header)
        except Exception as error:
            # The server logs this traceback outside the session: the note names it there.
            error.add_note(session_note(session_context))
            raise
        if isinstance(body, (list, tuple)):
            return body  # iterating it runs no app code, and servers may use its len()
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
            return body  # let the server send the file its own way (sendfile)
        return _SessionBody(body, context)


def _start_response_with_cookie(
    start_response: StartResponse,
    policy: SessionPolicy[WSGIEnvironment],
    session_id: str,
    environ: WSGIEnvironment,
    response_header: tuple[str, str],
) -> StartResponse:
    """Wrap `start_response` to add `Set-Cookie` wherever the session header was added."""
    cookie = policy.set_cookie_header(session_id, environ.get("wsgi.url_scheme") == "https")
    if cookie is None:
        return start_response
    set_cookie = ("Set-Cookie", cookie)

    def start_response_with_cookie(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        # The list the middleware built, ending with its header: the app did not set its own.
        if headers and headers[-1] is response_header:
            headers.append(set_cookie)
        return start_response(status, headers, exc_info)

    return start_response_with_cookie


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

    __slots__ = ("_body", "_context", "_iterator", "_closed")

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        self._body = body
        self._context = context
        self._iterator: Iterator[bytes] = context.run(iter, body)
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        # A generator rather than __next__: no new frame per chunk, and the end of the body
        # raises no StopIteration through a handler of ours.
        run, iterator = self._context.run, self._iterator
        try:
            while (chunk := run(next, iterator, _END)) is not _END:
                yield chunk
        except Exception:
            # PEP 3333 leaves close() to the server; make sure of it when iteration fails.
            self.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._body, "close", None)
        if close is not None:
            self._context.run(close)
