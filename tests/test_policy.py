"""The per-request decisions both middlewares share: which id, the generator and validator, reject.

Misconfigured options fail loudly, at the earliest moment that can tell, in both adapters.

- A `generator` is called once when the middleware is built: one that raises, or returns an id
  the validator refuses, stops the app from starting. If it goes bad later, the request that
  needed an id fails with the same `RuntimeError`.
- An `attributes` callable runs per request: whatever it raises reaches the server (a 500 with
  the traceback in the server's log), and data that is not JSON-compatible raises a `TypeError`
  naming the key. Nothing is dropped silently, and no session outlives the failed request.

Property-based: whatever bytes arrive in the session header, both middlewares stay correct.
For every value the request succeeds, the response carries exactly one session header holding a
valid id (the incoming one when it is valid, a new UUID4 otherwise), the app runs in that same
session, and the only log line is the fixed one that names the value's length, never the value.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_session import (
    SESSION_HEADER_NAME,
    SessionContext,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
    is_valid_session_id,
)
from ops_session.asgi import ASGIApp, Message, Receive, Scope, Send

from .support.asgi import http_scope, run, session_headers
from .support.wsgi import RecordingStartResponse, run_wsgi, wsgi_environ
from .support.wsgi import session_headers as wsgi_session_headers

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


def call_asgi(app: ASGIApp, *headers: tuple[bytes, bytes]) -> list[Message]:
    return asyncio.run(run(app, http_scope(*headers)))


def call_wsgi(
    app: WSGIApplication, session_id: str | None = None
) -> tuple[RecordingStartResponse, bytes]:
    return run_wsgi(app, wsgi_environ(session_id=session_id))


# Misconfiguration.


async def ok_asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def ok_wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


ADAPTERS = [
    pytest.param(lambda **options: SessionMiddleware(ok_asgi_app, **options), call_asgi, id="asgi"),
    pytest.param(
        lambda **options: WSGISessionMiddleware(ok_wsgi_app, **options), call_wsgi, id="wsgi"
    ),
]
Build = Callable[..., Any]
Call = Callable[[Any], object]


def one_good_id_then(bad: Callable[[], Any]) -> Callable[[], Any]:
    calls = itertools.count()
    return lambda: "good-id" if next(calls) == 0 else bad()


def fail() -> str:
    raise OSError("the id service is down")


@pytest.mark.parametrize(("build", "call"), ADAPTERS)
@pytest.mark.parametrize(
    "returned",
    ["not valid", "", 42, None, b"bytes-id"],
    ids=["space", "empty", "int", "none", "bytes"],
)
def test_generator_returning_an_unacceptable_id_stops_the_app_from_starting(
    build: Build, call: Call, returned: Any
) -> None:
    with pytest.raises(RuntimeError, match="returned .*which the validator rejects"):
        build(generator=lambda: returned)


@pytest.mark.parametrize(("build", "call"), ADAPTERS)
def test_generator_raising_stops_the_app_from_starting(build: Build, call: Call) -> None:
    with pytest.raises(OSError, match="the id service is down"):
        build(generator=fail)


@pytest.mark.parametrize(("build", "call"), ADAPTERS)
def test_generator_going_bad_later_fails_the_request_that_needs_an_id(
    build: Build, call: Call
) -> None:
    with pytest.raises(RuntimeError, match="returned 'a b'"):
        call(build(generator=one_good_id_then(lambda: "a b")))
    with pytest.raises(OSError, match="the id service is down"):
        call(build(generator=one_good_id_then(fail)))
    assert current_session() is None


def test_generator_checked_against_a_custom_validator() -> None:
    with pytest.raises(RuntimeError, match="returned 'conv-1'"):
        SessionMiddleware(ok_asgi_app, generator=lambda: "conv-1", validator=str.isdigit)
    SessionMiddleware(ok_asgi_app, generator=lambda: "123", validator=str.isdigit)


@pytest.mark.parametrize(("build", "call"), ADAPTERS)
@pytest.mark.parametrize(
    ("attributes", "error", "message"),
    [
        pytest.param(lambda request: 1 / 0, ZeroDivisionError, "division", id="raises"),
        pytest.param(lambda request: {"raw": b"x"}, TypeError, r"attributes\['raw'\]", id="bytes"),
        pytest.param(
            lambda request: {"when": object()}, TypeError, r"attributes\['when'\]", id="object"
        ),
        pytest.param(lambda request: {1: "x"}, TypeError, "keys must be str", id="int-key"),
        pytest.param(lambda request: ["x"], TypeError, "must be a mapping", id="not-a-mapping"),
    ],
)
def test_attributes_callable_errors_fail_the_request(
    build: Build, call: Call, attributes: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(build(attributes=attributes))
    assert current_session() is None


# Arbitrary header bytes.

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


async def session_id_asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    current = current_session()
    assert current is not None
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": current.id.encode("latin-1")})


def session_header(raw: bytes) -> tuple[bytes, bytes]:
    return (SESSION_HEADER_NAME.lower().encode(), raw)


@examples
@given(raw=header_values)
def test_asgi_any_header_bytes(raw: bytes) -> None:
    with captured_logs() as records:
        start, body = call_asgi(SessionMiddleware(session_id_asgi_app), session_header(raw))
        assert current_session() is None
        assert start["status"] == 200
        echoed = session_headers(start, SESSION_HEADER_NAME.lower().encode())
        check_outcome(raw, echoed, body["body"].decode("latin-1"), records.messages)


@examples
@given(raw=header_values)
def test_asgi_reject_mode_any_header_bytes(raw: bytes) -> None:
    start, body = call_asgi(
        SessionMiddleware(session_id_asgi_app, on_invalid="reject"), session_header(raw)
    )
    assert current_session() is None
    echoed = session_headers(start, SESSION_HEADER_NAME.lower().encode())
    if raw and not is_valid_session_id(raw.decode("latin-1")):
        assert start["status"] == 400
        assert echoed == []
        assert body["body"] == f"Invalid {SESSION_HEADER_NAME} header.\n".encode()
    else:
        assert start["status"] == 200
        assert echoed[0] == body["body"]


def session_id_wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    current = current_session()
    assert current is not None
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield current.id.encode("latin-1")


@examples
@given(raw=header_values)
def test_wsgi_any_header_bytes(raw: bytes) -> None:
    with captured_logs() as records:
        response, content = call_wsgi(
            WSGISessionMiddleware(session_id_wsgi_app), raw.decode("latin-1")
        )
        assert current_session() is None
        assert response.status == "200 OK"
        echoed = [value.encode("latin-1") for value in wsgi_session_headers(response.headers)]
        check_outcome(raw, echoed, content.decode("latin-1"), records.messages)


@examples
@given(raw=header_values)
def test_wsgi_reject_mode_any_header_bytes(raw: bytes) -> None:
    response, content = call_wsgi(
        WSGISessionMiddleware(session_id_wsgi_app, on_invalid="reject"), raw.decode("latin-1")
    )
    assert current_session() is None
    echoed = wsgi_session_headers(response.headers)
    if raw and not is_valid_session_id(raw.decode("latin-1")):
        assert response.status.startswith("400 ")
        assert echoed == []
    else:
        assert response.status == "200 OK"
        assert echoed == [content.decode("latin-1")]


@pytest.mark.parametrize("build", [SessionMiddleware, WSGISessionMiddleware])
def test_a_validator_that_refuses_the_default_generator_stops_startup(build: Any) -> None:
    with pytest.raises(RuntimeError, match="validator rejects"):
        build(ok_asgi_app, validator=lambda value: value.startswith("chat-"))


@pytest.mark.parametrize("attributes", [None, {"user": "ada"}], ids=["plain", "attributes"])
def test_the_policy_builds_each_session_with_every_field(attributes: dict[str, Any] | None) -> None:
    """The policy builds a request's `SessionContext` slot by slot: it must know every field."""
    assert [field.name for field in dataclasses.fields(SessionContext)] == ["id", "attributes"]
    policy = SessionMiddleware(ok_asgi_app, attributes=attributes).policy
    assert policy.session_for("fast-1", {}) == (
        SessionContext(id="fast-1", attributes=attributes),
        False,
    )
    decision = policy.session_for(None, {})
    assert decision is not None
    built, generated = decision
    assert generated
    assert dataclasses.asdict(built) == {"id": built.id, "attributes": attributes}


def test_only_a_policy_that_reads_a_cookie_finds_one_invalid() -> None:
    cookie_header = {"headers": [(b"cookie", b"sid=<x>")]}
    assert not SessionMiddleware(ok_asgi_app).policy.invalid_cookie(cookie_header)
    assert SessionMiddleware(ok_asgi_app, cookie="sid").policy.invalid_cookie(cookie_header)
    assert not SessionMiddleware(ok_asgi_app, cookie="sid").policy.invalid_cookie({"headers": []})
