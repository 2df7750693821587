"""One WSGI driver for the tests: build an environ, call an app on it, read its response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from wsgiref.util import setup_testing_defaults

from ops_session import SESSION_HEADER_NAME, current_session

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication, WSGIEnvironment

    from _typeshed import OptExcInfo


def wsgi_environ(
    *, path: str = "/", session_id: str | None = None, **extra: Any
) -> WSGIEnvironment:
    """A complete GET environ (wsgiref's testing defaults) for `path`.

    `session_id` is put in the session header's key as it is, unchecked, as a server would.
    """
    environ: WSGIEnvironment = {"PATH_INFO": path, **extra}
    if session_id is not None:
        environ["HTTP_MIRASCOPE_SESSION_ID"] = session_id
    setup_testing_defaults(environ)
    return environ


@dataclass
class RecordingStartResponse:
    """A `start_response` that records every call: status, headers, exc_info."""

    calls: list[tuple[str, list[tuple[str, str]], OptExcInfo | None]] = field(default_factory=list)
    written: list[bytes] = field(default_factory=list)

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        self.calls.append((status, headers, exc_info))
        return self.written.append

    @property
    def status(self) -> str:
        return self.calls[-1][0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.calls[-1][1]


def run_wsgi(
    app: WSGIApplication, environ: WSGIEnvironment
) -> tuple[RecordingStartResponse, bytes]:
    """Call `app` as a server does: iterate the body, close it; return the response and body.

    Whatever happens, the caller's session must be as it was before.
    """
    start_response = RecordingStartResponse()
    before = current_session()
    try:
        body = app(environ, start_response)
        try:
            content = b"".join(body)
        finally:
            close = getattr(body, "close", None)  # a list body has none
            if close is not None:
                close()
    finally:
        assert current_session() is before, "the app left another session current"
    return start_response, content


def session_headers(headers: list[tuple[str, str]], name: str = SESSION_HEADER_NAME) -> list[str]:
    """The values of the response headers called `name`, whatever their case."""
    return [value for key, value in headers if key.lower() == name.lower()]
