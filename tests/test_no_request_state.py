"""The middlewares keep nothing of a request on themselves, and leave no session set behind.

The ASGI middleware sets the session with a ContextVar token and must reset every one, whatever
the request did. The WSGI middleware sets it inside a Context of the request's own, which must
not outlive the request.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

import ops_session.asgi
from ops_session import SessionMiddleware, WSGISessionMiddleware, current_session
from ops_session._core import activate, deactivate
from ops_session.asgi import Message, Receive, Scope, Send

HEADERS = [None, b"valid-1", b"not valid", b"\xff"]


def snapshot(middleware: Any) -> dict[str, Any]:
    """Every slot of the middleware and of its policy: what could carry state between requests."""
    state = {}
    for owner in (middleware, middleware.policy):
        for slot in type(owner).__slots__:
            state[f"{type(owner).__name__}.{slot}"] = getattr(owner, slot)
    return state


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/raise":
        raise RuntimeError("app failure")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if scope["path"] == "/hang":
        await asyncio.Event().wait()
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("on_invalid", ["generate", "reject"])
def test_asgi_resets_every_token_and_keeps_no_request_state(
    monkeypatch: pytest.MonkeyPatch, on_invalid: Any
) -> None:
    tokens: list[contextvars.Token[Any]] = []
    resets: list[contextvars.Token[Any]] = []

    def counting_set(value: Any) -> contextvars.Token[Any]:
        token = activate(value)
        tokens.append(token)
        return token

    def counting_reset(token: contextvars.Token[Any]) -> None:
        resets.append(token)
        deactivate(token)

    monkeypatch.setattr(ops_session.asgi, "activate", counting_set)
    monkeypatch.setattr(ops_session.asgi, "deactivate", counting_reset)
    middleware = SessionMiddleware(asgi_app, on_invalid=on_invalid)
    before = snapshot(middleware)

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        pass

    async def main() -> None:
        for path in ["/", "/raise", "/hang"]:
            for raw in HEADERS:
                headers = [] if raw is None else [(b"mirascope-session-id", raw)]
                scope = {"type": "http", "path": path, "headers": headers}
                try:
                    async with asyncio.timeout(0.02):
                        await middleware(scope, receive, send)
                except (RuntimeError, TimeoutError):
                    pass
                assert current_session() is None

    asyncio.run(main())
    assert tokens and resets == tokens
    assert snapshot(middleware) == before


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    def body() -> Iterator[bytes]:
        yield b"one"
        if environ["PATH_INFO"] == "/raise":
            raise RuntimeError("body failure")
        yield b"two"

    start_response("200 OK", [])
    return body()


def contexts_holding_a_session() -> list[contextvars.Context]:
    gc.collect()
    # type() rather than isinstance(): Context cannot be subclassed, and isinstance() would ask
    # lazy objects (Django's settings-backed ones) for their __class__, which sets them up.
    return [
        obj
        for obj in gc.get_objects()
        if type(obj) is contextvars.Context and obj.run(current_session) is not None
    ]


@pytest.mark.parametrize("on_invalid", ["generate", "reject"])
def test_wsgi_request_contexts_die_with_their_requests(on_invalid: Any) -> None:
    middleware = WSGISessionMiddleware(wsgi_app, on_invalid=on_invalid)
    before = snapshot(middleware)
    for path in ["/", "/raise"]:
        for raw in HEADERS:
            environ: dict[str, Any] = {"PATH_INFO": path}
            if raw is not None:
                environ["HTTP_MIRASCOPE_SESSION_ID"] = raw.decode("latin-1")
            setup_testing_defaults(environ)
            statuses: list[str] = []
            body = middleware(
                environ,
                lambda status, headers, exc_info=None, record=statuses.append: record(status),
            )
            try:
                for _chunk in body:
                    # While the body runs, the request's own Context holds its session;
                    # a rejected request never gets one.
                    assert bool(contexts_holding_a_session()) is (statuses == ["200 OK"])
            except RuntimeError:
                pass
            finally:
                getattr(body, "close", lambda: None)()
            del body
            assert current_session() is None
            assert contexts_holding_a_session() == []
    assert snapshot(middleware) == before
