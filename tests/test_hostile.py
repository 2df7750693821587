"""Property-based: whatever bytes arrive in the session header, both middlewares stay correct.

For every value the request succeeds, the response carries exactly one session header holding a
valid id (the incoming one when it is valid, a new UUID4 otherwise), the app runs in that same
session, and the only log line is the fixed one that names the value's length, never the value.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.util import setup_testing_defaults

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_session import (
    SESSION_HEADER_NAME,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
    is_valid_session_id,
)
from ops_session.asgi import Message, Receive, Scope, Send

VALID_ID = re.compile(r"[A-Za-z0-9._:@+=/~-]{1,128}")
LOG_LINE = re.compile(
    rf"Invalid {SESSION_HEADER_NAME} header \(\d+ characters\): "
    r"(replaced by a generated id|rejected)\."
)
header_values = st.one_of(
    st.binary(max_size=300),
    st.from_regex(VALID_ID, fullmatch=True).map(str.encode),
    st.sampled_from([b"", b" ", b"\t", b"a b", b"a\r\nb", b"a\x00b", b"\xff", b"a" * 129]),
)
examples = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def captured_logs() -> Iterator[Records]:
    logger = logging.getLogger("ops_session")
    records = Records()
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


def check_outcome(raw: bytes, echoed: list[bytes], seen: str, messages: list[str]) -> None:
    assert len(echoed) == 1
    session_id = echoed[0].decode("latin-1")
    assert is_valid_session_id(session_id)
    assert seen == session_id
    incoming = raw.decode("latin-1")
    if is_valid_session_id(incoming):
        assert session_id == incoming
        assert messages == []
    else:
        assert uuid.UUID(session_id).version == 4
        if incoming:
            assert len(messages) == 1 and LOG_LINE.fullmatch(messages[0]), messages
        else:
            assert messages == []


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    current = current_session()
    assert current is not None
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": current.id.encode("latin-1")})


def run_asgi(app: Any, raw: bytes) -> list[Message]:
    messages: list[Message] = []
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"host", b"example.com"), (SESSION_HEADER_NAME.lower().encode(), raw)],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    assert current_session() is None
    return messages


def session_headers(headers: Iterable[tuple[Any, Any]], name: Any) -> list[Any]:
    return [value for key, value in headers if key.lower() == name]


@examples
@given(raw=header_values)
def test_asgi_any_header_bytes(raw: bytes) -> None:
    with captured_logs() as records:
        start, body = run_asgi(SessionMiddleware(asgi_app), raw)
        assert start["status"] == 200
        echoed = session_headers(start["headers"], SESSION_HEADER_NAME.lower().encode())
        check_outcome(raw, echoed, body["body"].decode("latin-1"), records.messages)


@examples
@given(raw=header_values)
def test_asgi_reject_mode_any_header_bytes(raw: bytes) -> None:
    start, body = run_asgi(SessionMiddleware(asgi_app, on_invalid="reject"), raw)
    echoed = session_headers(start["headers"], SESSION_HEADER_NAME.lower().encode())
    if raw and not is_valid_session_id(raw.decode("latin-1")):
        assert start["status"] == 400
        assert echoed == []
        assert body["body"] == f"Invalid {SESSION_HEADER_NAME} header.\n".encode()
    else:
        assert start["status"] == 200
        assert echoed[0] == body["body"]


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    current = current_session()
    assert current is not None
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield current.id.encode("latin-1")


def run_wsgi(app: Any, raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    environ: dict[str, Any] = {"HTTP_MIRASCOPE_SESSION_ID": raw.decode("latin-1")}
    setup_testing_defaults(environ)
    response: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        response[:] = [status, headers]

    body = app(environ, start_response)
    try:
        content = b"".join(body)
    finally:
        close = getattr(body, "close", None)  # a rejection is a plain list
        if close is not None:
            close()
    assert current_session() is None
    return response[0], response[1], content


@examples
@given(raw=header_values)
def test_wsgi_any_header_bytes(raw: bytes) -> None:
    with captured_logs() as records:
        status, headers, content = run_wsgi(WSGISessionMiddleware(wsgi_app), raw)
        assert status == "200 OK"
        echoed = [
            value.encode("latin-1")
            for value in session_headers(headers, SESSION_HEADER_NAME.lower())
        ]
        check_outcome(raw, echoed, content.decode("latin-1"), records.messages)


@examples
@given(raw=header_values)
def test_wsgi_reject_mode_any_header_bytes(raw: bytes) -> None:
    status, headers, content = run_wsgi(WSGISessionMiddleware(wsgi_app, on_invalid="reject"), raw)
    echoed = session_headers(headers, SESSION_HEADER_NAME.lower())
    if raw and not is_valid_session_id(raw.decode("latin-1")):
        assert status.startswith("400 ")
        assert echoed == []
    else:
        assert status == "200 OK"
        assert echoed == [content.decode("latin-1")]
