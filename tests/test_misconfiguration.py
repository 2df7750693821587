"""Misconfigured options fail loudly, at the earliest moment that can tell, in both adapters.

- A `generator` is called once when the middleware is built: one that raises, or returns an id
  the validator refuses, stops the app from starting. If it goes bad later, the request that
  needed an id fails with the same `RuntimeError`.
- An `attributes` callable runs per request: whatever it raises reaches the server (a 500 with
  the traceback in the server's log), and data that is not JSON-compatible raises a `TypeError`
  naming the key. Nothing is dropped silently, and no session outlives the failed request.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from ops_session import SessionMiddleware, WSGISessionMiddleware, current_session
from ops_session.asgi import Message, Receive, Scope, Send


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def call_asgi(middleware: Any) -> None:
    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(middleware({"type": "http", "headers": []}, receive, send))


def call_wsgi(middleware: Any) -> None:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    list(middleware(environ, lambda status, headers, exc_info=None: None))


ADAPTERS = [
    pytest.param(lambda **options: SessionMiddleware(asgi_app, **options), call_asgi, id="asgi"),
    pytest.param(
        lambda **options: WSGISessionMiddleware(wsgi_app, **options), call_wsgi, id="wsgi"
    ),
]
Build = Callable[..., Any]
Call = Callable[[Any], None]


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
        SessionMiddleware(asgi_app, generator=lambda: "conv-1", validator=str.isdigit)
    SessionMiddleware(asgi_app, generator=lambda: "123", validator=str.isdigit)


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
