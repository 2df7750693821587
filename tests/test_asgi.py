from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import ops_session.asgi
from ops_session import SESSION_HEADER_NAME, SessionContext, current_session, session
from ops_session._core import (
    SHARED_EXCEPTION_NOTE,
    activate,
    add_request_listener,
    deactivate,
    remove_request_listener,
)
from ops_session.asgi import STATE_KEY, Message, Receive, Scope, Send, SessionMiddleware

from .live.apps.asgi_app import build
from .support.asgi import http_scope, run, session_headers
from .support.hostile import hostile_bytes
from .support.state import SESSION_HEADER_VALUES, snapshot

pytestmark = pytest.mark.anyio

HOSTILE_IDS = hostile_bytes()


class RecordingApp:
    """A raw ASGI app that records what it saw and answers 200."""

    def __init__(self, response_headers: Any = None) -> None:
        self.scopes: list[Scope] = []
        self.sessions: list[SessionContext | None] = []
        self.response_headers = response_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        self.sessions.append(current_session())
        if scope["type"] != "http":
            return
        start: Message = {"type": "http.response.start", "status": 200}
        if self.response_headers is not None:
            start["headers"] = self.response_headers
        await send(start)
        await send({"type": "http.response.body", "body": b"ok"})


async def test_valid_id_is_used_echoed_and_left_in_place() -> None:
    inner = RecordingApp()
    scope = http_scope((b"mirascope-session-id", b"chat-42"))
    original_headers = list(scope["headers"])
    start, _ = await run(SessionMiddleware(inner), scope)
    assert session_headers(start) == [b"chat-42"]
    assert inner.sessions[0] == SessionContext(id="chat-42")
    assert inner.scopes[0] is scope  # nothing to rewrite, nothing copied
    assert scope["headers"] == original_headers


async def test_missing_id_is_generated_and_shown_to_the_app() -> None:
    inner = RecordingApp()
    scope = http_scope()
    original_headers = scope["headers"]
    start, _ = await run(SessionMiddleware(inner), scope)
    (sent,) = session_headers(start)
    assert uuid.UUID(sent.decode()).version == 4
    context = inner.sessions[0]
    assert context is not None and context.id == sent.decode()
    seen = inner.scopes[0]
    assert seen is scope  # changed in place, so that outer layers see what the app writes
    assert (b"mirascope-session-id", sent) in seen["headers"]
    assert seen["headers"] is not original_headers and len(original_headers) == 1


@pytest.mark.parametrize("raw", HOSTILE_IDS)
async def test_invalid_id_is_replaced_never_echoed_nor_logged(
    raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_session")
    inner = RecordingApp()
    start, _ = await run(SessionMiddleware(inner), http_scope((b"mirascope-session-id", raw)))
    (sent,) = session_headers(start)
    assert uuid.UUID(sent.decode()).version == 4
    assert raw not in sent
    assert [
        value for name, value in inner.scopes[0]["headers"] if name == b"mirascope-session-id"
    ] == [sent]
    (record,) = [r for r in caplog.records if r.name == "ops_session"]
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        f"Invalid Mirascope-Session-Id header ({len(raw)} characters): replaced by a generated id."
    )


@pytest.mark.parametrize("pair", [tuple, list], ids=["tuples", "lists"])
async def test_invalid_id_gives_way_in_every_copy_and_case(pair: Any) -> None:
    inner = RecordingApp()
    headers = [
        (b"accept", b"*/*"),
        (b"Mirascope-Session-Id", b"bad id"),
        (b"x-trace", b"t-1"),
        (b"MIRASCOPE-SESSION-ID", b"also bad"),
        (b"mirascope-session-id", b"chat-42"),
        (b"x-zzzzzzzzzzzzzzzzzz", b"same length, another name"),
    ]
    scope = http_scope()
    scope["headers"] = [pair(header) for header in headers]
    start, _ = await run(SessionMiddleware(inner), scope)
    (sent,) = session_headers(start)
    assert uuid.UUID(sent.decode()).version == 4
    assert [tuple(header) for header in inner.scopes[0]["headers"]] == [
        (b"accept", b"*/*"),
        (b"x-trace", b"t-1"),
        (b"x-zzzzzzzzzzzzzzzzzz", b"same length, another name"),
        (b"mirascope-session-id", sent),
    ]


async def test_first_of_repeated_headers_wins() -> None:
    inner = RecordingApp()
    scope = http_scope((b"mirascope-session-id", b"first"), (b"mirascope-session-id", b"second"))
    start, _ = await run(SessionMiddleware(inner), scope)
    assert session_headers(start) == [b"first"]


@pytest.mark.parametrize("position", ["last", "before-others"])
async def test_header_name_in_odd_case_from_a_non_conforming_caller(position: str) -> None:
    inner = RecordingApp()
    odd = (b"Mirascope-SESSION-id", b"odd")
    others = [(b"accept", b"*/*"), (b"x-trace", b"t-1")]
    headers = [*others, odd] if position == "last" else [odd, *others]
    start, _ = await run(SessionMiddleware(inner), http_scope(*headers))
    assert session_headers(start) == [b"odd"]
    assert inner.sessions[0] is not None and inner.sessions[0].id == "odd"


async def test_empty_value_counts_as_missing() -> None:
    inner = RecordingApp()
    start, _ = await run(
        SessionMiddleware(inner, on_invalid="reject"), http_scope((b"mirascope-session-id", b""))
    )
    assert start["status"] == 200
    assert uuid.UUID(session_headers(start)[0].decode()).version == 4


async def test_update_request_header_false_leaves_the_request_alone() -> None:
    inner = RecordingApp()
    scope = http_scope((b"mirascope-session-id", b"bad id"))
    start, _ = await run(SessionMiddleware(inner, update_request_header=False), scope)
    assert inner.scopes[0] is scope
    assert session_headers(start) != [b"bad id"]


@pytest.mark.parametrize("raw", HOSTILE_IDS)
async def test_reject_mode_answers_400_without_echo(raw: bytes) -> None:
    inner = RecordingApp()
    start, body = await run(
        SessionMiddleware(inner, on_invalid="reject"),
        http_scope((b"mirascope-session-id", raw)),
    )
    assert start["status"] == 400
    assert dict(start["headers"])[b"content-type"] == b"text/plain; charset=utf-8"
    assert body["body"] == b"Invalid Mirascope-Session-Id header.\n"
    assert session_headers(start) == []
    assert inner.scopes == []


async def test_reject_mode_closes_a_websocket_with_1008() -> None:
    inner = RecordingApp()
    scope = http_scope((b"mirascope-session-id", b"a b"), type="websocket", scheme="ws")
    sent = await run(
        SessionMiddleware(inner, on_invalid="reject"),
        scope,
        receive_messages=[{"type": "websocket.connect"}],
    )
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert inner.scopes == []


async def test_websocket_accept_carries_the_header() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        session = current_session()
        assert session is not None
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": session.id})
        await send({"type": "websocket.close", "code": 1000})

    scope = http_scope((b"mirascope-session-id", b"ws-1"), type="websocket", scheme="ws")
    accept, text, close = await run(
        SessionMiddleware(app), scope, receive_messages=[{"type": "websocket.connect"}]
    )
    assert accept == {"type": "websocket.accept", "headers": [(b"mirascope-session-id", b"ws-1")]}
    assert text["text"] == "ws-1"
    assert close["type"] == "websocket.close"


@pytest.mark.parametrize("scope_type", ["lifespan", "custom.protocol"])
async def test_other_scope_types_pass_straight_through(scope_type: str) -> None:
    seen: list[tuple[Scope, Any, Any, object]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send, current_session()))

    async def receive() -> Message:  # pragma: no cover
        return {}

    async def send(message: Message) -> None:  # pragma: no cover
        pass

    scope: Scope = {"type": scope_type, "asgi": {"version": "3.0"}}
    await SessionMiddleware(app)(scope, receive, send)
    assert seen == [(scope, receive, send, None)]


async def test_lifespan_runs_untouched_under_starlette() -> None:
    events: list[str] = []

    async def lifespan(app: FastAPI) -> Any:
        events.append(f"startup:{current_session()}")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SessionMiddleware)
    with TestClient(app):
        pass
    assert events == ["startup:None", "shutdown"]


@pytest.mark.parametrize(
    "app_headers",
    [
        pytest.param([(b"mirascope-session-id", b"app-chosen")], id="lower"),
        pytest.param([(b"Mirascope-Session-Id", b"app-chosen")], id="mixed-case"),
    ],
)
async def test_app_set_header_is_kept_and_not_duplicated(app_headers: Any) -> None:
    start, _ = await run(
        SessionMiddleware(RecordingApp(app_headers)),
        http_scope((b"mirascope-session-id", b"incoming")),
    )
    values = [v for n, v in start["headers"] if n.lower() == b"mirascope-session-id"]
    assert values == [b"app-chosen"]


@pytest.mark.parametrize(
    "app_headers",
    [
        pytest.param(None, id="absent"),
        pytest.param(((b"x-a", b"1"),), id="tuple"),
        pytest.param([(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")], id="duplicates"),
    ],
)
async def test_response_headers_are_appended_not_rebuilt(app_headers: Any) -> None:
    start, _ = await run(
        SessionMiddleware(RecordingApp(app_headers)),
        http_scope((b"mirascope-session-id", b"s-1")),
    )
    assert start["headers"] == [*(app_headers or ()), (b"mirascope-session-id", b"s-1")]


async def test_constant_response_header_list_is_not_mutated() -> None:
    shared = [(b"content-type", b"text/plain")]
    middleware = SessionMiddleware(RecordingApp(shared))
    for _ in range(3):
        await run(middleware, http_scope())
    assert shared == [(b"content-type", b"text/plain")]


async def test_scope_without_headers_key() -> None:
    inner = RecordingApp()
    scope = http_scope()
    del scope["headers"]
    start, _ = await run(SessionMiddleware(inner), scope)
    (sent,) = session_headers(start)
    assert scope["headers"] == [(b"mirascope-session-id", sent)]


async def test_attributes_mapping_and_callable() -> None:
    inner = RecordingApp()
    await run(SessionMiddleware(inner, attributes={"service": "api"}), http_scope())

    def per_request(scope: Scope) -> dict[str, Any]:
        return {"method": scope["method"], "path": scope["path"]}

    await run(SessionMiddleware(inner, attributes=per_request), http_scope())
    assert [s.attributes if s else None for s in inner.sessions] == [
        {"service": "api"},
        {"method": "GET", "path": "/items"},
    ]


async def test_attributes_callable_errors_reach_the_caller() -> None:
    with pytest.raises(TypeError, match=r"attributes\['raw'\]"):
        await run(
            SessionMiddleware(RecordingApp(), attributes=lambda s: {"raw": b"x"}), http_scope()
        )


async def test_custom_header_generator_and_validator() -> None:
    inner = RecordingApp()
    middleware = SessionMiddleware(
        inner,
        header_name="X-Conversation",
        generator=lambda: "conv-new",
        validator=lambda value: value.startswith("conv-"),
    )
    start, _ = await run(middleware, http_scope((b"x-conversation", b"conv-1")))
    assert dict(start["headers"])[b"x-conversation"] == b"conv-1"
    start, _ = await run(middleware, http_scope((b"x-conversation", b"other")))
    assert dict(start["headers"])[b"x-conversation"] == b"conv-new"
    # A custom validator never sees, and so can never let through, an unsafe value.
    start, _ = await run(middleware, http_scope((b"x-conversation", b"conv-\r\nx")))
    assert dict(start["headers"])[b"x-conversation"] == b"conv-new"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        pytest.param({"header_name": "bad header"}, ValueError, "header_name", id="header-space"),
        pytest.param({"header_name": ""}, ValueError, "header_name", id="header-empty"),
        pytest.param({"header_name": b"x"}, ValueError, "header_name", id="header-bytes"),
        pytest.param({"generator": 3}, TypeError, "generator", id="generator"),
        pytest.param({"generator": "uuid"}, ValueError, "dotted path", id="generator-path"),
        pytest.param({"validator": True}, TypeError, "validator", id="validator"),
        pytest.param({"on_invalid": "ignore"}, ValueError, "'generate' or 'reject'", id="mode"),
        pytest.param({"attributes": 3}, TypeError, "attributes must be", id="attributes"),
        pytest.param({"attributes": {"x": {1}}}, TypeError, r"\['x'\]", id="attributes-json"),
        pytest.param({"update_request_header": "yes"}, TypeError, "bool", id="update"),
    ],
)
def test_bad_options_raise_at_construction(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SessionMiddleware(RecordingApp(), **options)


# FastAPI / Starlette stacks, in-process.


def fastapi_stack(*, outermost: bool = False) -> Any:
    """The FastAPI app the server tests run, here called in-process."""
    app = build()
    if outermost:
        return SessionMiddleware(app)
    app.add_middleware(SessionMiddleware)
    return app


@pytest.mark.parametrize("outermost", [False, True], ids=["add_middleware", "outermost"])
def test_fastapi_handlers_of_every_kind_see_the_session(outermost: bool) -> None:
    headers = {SESSION_HEADER_NAME: "fa-1"}
    with TestClient(fastapi_stack(outermost=outermost), headers=headers) as client:
        assert client.get("/session").json() == {
            "id": "fa-1",
            "attributes": {},
            "request_header": "fa-1",
        }
        assert client.get("/sync").json()["id"] == "fa-1"
        response = client.get("/stream")
        assert response.text == "fa-1\n" * 5
        assert response.headers[SESSION_HEADER_NAME] == "fa-1"
        key = uuid.uuid4().hex
        client.get("/background", params={"key": key})
        assert client.get("/background-result", params={"key": key}).json() == {"id": "fa-1"}
        assert client.get("/nested").json() == {
            "outer": "fa-1",
            "inner": "nested-inner",
            "after": "fa-1",
        }
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_text() == "fa-1"
            websocket.send_text("ping")
            assert websocket.receive_text() == "ping:fa-1"


def test_server_error_handler_reads_the_session_from_request_state() -> None:
    with TestClient(fastapi_stack(), raise_server_exceptions=False) as client:
        response = client.get("/error", headers={SESSION_HEADER_NAME: "err-1"})
    assert response.status_code == 500
    # add_middleware puts ServerErrorMiddleware outside ours: the session is closed by then,
    # and the 500 goes out past us, but request.state still names it.
    assert response.text == "error in session err-1, current None"
    assert SESSION_HEADER_NAME not in response.headers


def test_outermost_wrapping_puts_the_header_on_500s() -> None:
    with TestClient(fastapi_stack(outermost=True), raise_server_exceptions=False) as client:
        response = client.get("/error")
    assert response.status_code == 500
    generated = response.headers[SESSION_HEADER_NAME]
    assert response.text == f"error in session {generated}, current {generated}"


async def test_session_restored_in_caller_after_each_request() -> None:
    transport = httpx.ASGITransport(app=fastapi_stack(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with session(id="test-outer") as outer:
            for path in ("/session", "/nested", "/error", "/stream"):
                await client.get(path, headers={SESSION_HEADER_NAME: "req-1"})
                assert current_session() is outer
        assert current_session() is None
        response = await client.get("/session")
        assert response.json()["id"] not in ("req-1", "test-outer")


async def test_exception_passes_through_untouched_and_session_is_restored() -> None:
    error = ValueError("from the app")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise error

    with session(id="caller") as caller:
        with pytest.raises(ValueError) as raised:
            await run(SessionMiddleware(app), http_scope())
        assert raised.value is error
        assert current_session() is caller


def test_state_is_not_shared_between_requests() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["state"].get(STATE_KEY))
        await JSONResponse({})(scope, receive, send)

    client = TestClient(SessionMiddleware(app))
    first = client.get("/", headers={SESSION_HEADER_NAME: "one"})
    second = client.get("/", headers={SESSION_HEADER_NAME: "two"})
    assert [s.id for s in seen] == ["one", "two"]
    assert first.headers[SESSION_HEADER_NAME] == "one"
    assert second.headers[SESSION_HEADER_NAME] == "two"


# No request state: the middleware sets the session with a ContextVar token and must reset every
# one, whatever the request did, and keep nothing of a request on itself.


async def failing_by_path_app(scope: Scope, receive: Receive, send: Send) -> None:
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
    middleware = SessionMiddleware(failing_by_path_app, on_invalid=on_invalid)
    before = snapshot(middleware)

    async def main() -> None:
        for path in ["/", "/raise", "/hang"]:
            for raw in SESSION_HEADER_VALUES:
                headers = [] if raw is None else [(b"mirascope-session-id", raw)]
                try:
                    await run(middleware, http_scope(*headers, path=path), timeout=0.02)
                except (RuntimeError, TimeoutError):
                    pass
                assert current_session() is None

    asyncio.run(main())
    assert tokens and resets == tokens
    assert snapshot(middleware) == before


# Faults: after each one the session is restored, and the next request sees no trace of it.
# The middleware runs in the test's own task, so "restored" is checked directly. (Under uvicorn:
# tests/live/test_faults.py.)


class Script:
    """A raw ASGI app that records the session it ran in, then misbehaves as told."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.seen: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        current = current_session()
        self.seen.append(current.id if current else None)
        if self.fault == "never-responds":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        if self.fault == "hangs":
            await asyncio.Event().wait()
        if self.fault == "raises-after-start":
            raise RuntimeError("after the response started")
        await send({"type": "http.response.body", "body": b"second"})


async def run_fault(fault: str) -> tuple[Script, list[Message], BaseException | None]:
    app = Script(fault)
    sent: list[Message] = []
    error: BaseException | None = None
    try:
        await run(
            SessionMiddleware(app),
            http_scope((b"mirascope-session-id", b"fault-1")),
            sent=sent,
            # What a server's send does after the client disconnected.
            fail_send=lambda message: message.get("body") == b"second",
            timeout=0.1,
        )
    except (TimeoutError, RuntimeError, OSError) as raised:
        error = raised
    return app, sent, error


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param("hangs", TimeoutError, id="handler-task-cancelled"),
        pytest.param("raises-after-start", RuntimeError, id="raises-after-response-started"),
        pytest.param("disconnects", OSError, id="client-disconnects-mid-stream"),
        pytest.param("never-responds", None, id="never-sends-a-response"),
    ],
)
def test_session_is_restored_after_the_fault(fault: str, error: type[Exception] | None) -> None:
    async def main() -> None:
        with session(id="outer") as outer:
            app, sent, raised = await run_fault(fault)
            assert current_session() is outer
        assert current_session() is None
        assert app.seen == ["fault-1"]
        assert (type(raised) if raised else None) is error
        if sent:
            assert (b"mirascope-session-id", b"fault-1") in sent[0]["headers"]

    asyncio.run(main())


# Scope, messages and iterables that belong to the server or the app.


def route_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"item": item_id}

    app.add_middleware(SessionMiddleware)
    return app


@pytest.mark.parametrize(
    "headers", [{}, {SESSION_HEADER_NAME: "given-1"}], ids=["generated", "given"]
)
async def test_what_the_router_writes_into_the_scope_reaches_outer_layers(
    headers: dict[str, str],
) -> None:
    app = route_app()
    seen: list[Scope] = []

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        seen.append(scope)

    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/items/7", headers=headers)
    assert response.json() == {"item": "7"}
    (scope,) = seen
    assert scope["route"].path == "/items/{item_id}"
    assert scope["path_params"] == {"item_id": "7"}


async def test_outer_instrumentation_labels_header_less_requests_with_their_route() -> None:
    reader = InMemoryMetricReader()
    app = route_app()
    FastAPIInstrumentor.instrument_app(
        app, meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=TracerProvider()
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/items/7")).status_code == 200
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    data = reader.get_metrics_data()
    assert data is not None
    routes = {
        point.attributes.get("http.target")  # the route template, in the metric
        for resource in data.resource_metrics
        for scope_metrics in resource.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == "http.server.duration"
        for point in metric.data.data_points
        if point.attributes
    }
    assert routes == {"/items/{item_id}"}


async def test_the_server_header_list_is_left_as_it_was() -> None:
    inner = RecordingApp()
    scope = http_scope((b"mirascope-session-id", b"not valid"))
    server_headers = scope["headers"]
    before = list(server_headers)
    start, _ = await run(SessionMiddleware(inner), scope)
    (generated,) = session_headers(start)
    assert server_headers == before
    assert (b"mirascope-session-id", generated) in inner.scopes[0]["headers"]
    assert (b"mirascope-session-id", b"not valid") not in inner.scopes[0]["headers"]


async def test_a_start_message_the_app_reuses_gets_each_request_its_own_header() -> None:
    start: Message = {"type": "http.response.start", "status": 200, "headers": [(b"a", b"1")]}

    async def reusing_app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = SessionMiddleware(reusing_app)
    for session_id in (b"first-1", b"second-2"):
        sent, _ = await run(middleware, http_scope((b"mirascope-session-id", session_id)))
        assert session_headers(sent) == [session_id]
    assert start["headers"] == [(b"a", b"1")]


async def test_headers_given_as_any_iterable_are_read_once_each() -> None:
    inner = RecordingApp(response_headers=((b"x-app", b"1") for _ in range(1)))
    scope = http_scope()
    scope["headers"] = iter([(b"host", b"testserver"), (b"mirascope-session-id", b"iter-1")])
    start, _ = await run(SessionMiddleware(inner), scope)
    assert session_headers(start) == [b"iter-1"]
    assert (b"x-app", b"1") in start["headers"]
    assert inner.sessions[0] is not None and inner.sessions[0].id == "iter-1"


async def test_a_websocket_denial_response_carries_the_header() -> None:
    async def denying_app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})

    scope = http_scope((b"mirascope-session-id", b"denied-1"), type="websocket")
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await SessionMiddleware(denying_app)(scope, receive, send)
    assert session_headers(sent[0]) == [b"denied-1"]


async def test_500_recipe_finds_the_session_where_the_server_gives_no_state() -> None:
    app = FastAPI()

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("unhandled on purpose")

    async def on_error(request: Request, exc: Exception) -> PlainTextResponse:
        found: SessionContext | None = getattr(request.state, "ops_session", None)
        return PlainTextResponse(f"Error in session {found.id if found else '-'}", 500)

    app.add_exception_handler(Exception, on_error)
    app.add_middleware(SessionMiddleware)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # no scope["state"]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/fail", headers={SESSION_HEADER_NAME: "no-state-1"})
    assert response.text == "Error in session no-state-1"


async def test_a_state_of_none_becomes_a_dict_and_a_state_that_is_no_mapping_is_refused() -> None:
    app = RecordingApp()
    scope = http_scope((b"mirascope-session-id", b"state-1"))
    scope["state"] = None
    await run(SessionMiddleware(app), scope)
    assert scope["state"][STATE_KEY].id == "state-1"

    scope = http_scope((b"mirascope-session-id", b"state-2"))
    scope["state"] = ("not", "a", "mapping")
    with pytest.raises(TypeError):
        await run(SessionMiddleware(app), scope)


async def test_request_listeners_hear_each_request_session_inside_it() -> None:
    heard: list[tuple[str, bool]] = []

    def listener(context: SessionContext) -> None:
        heard.append((context.id, current_session() is context))

    add_request_listener(listener)
    try:
        await run(SessionMiddleware(RecordingApp()), http_scope((b"mirascope-session-id", b"h-1")))
    finally:
        remove_request_listener(listener)
    assert heard == [("h-1", True)]


# One-shot header iterables: the ASGI spec allows any iterable, and an iterator is read once.


async def respond_ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def one_shot(*headers: tuple[bytes, bytes]) -> Iterator[tuple[bytes, bytes]]:
    yield from headers


@pytest.mark.parametrize(
    ("headers", "options"),
    [
        pytest.param((b"mirascope-session-id", b"valid-1"), {}, id="valid-id"),
        pytest.param((b"x-other", b"1"), {"update_request_header": False}, id="not-updated"),
    ],
)
async def test_the_app_sees_every_request_header_of_a_one_shot_iterable(
    headers: tuple[bytes, bytes], options: dict[str, Any]
) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(list(scope["headers"]))
        await respond_ok(scope, receive, send)

    scope = http_scope()
    scope["headers"] = one_shot((b"host", b"testserver"), headers)
    await run(SessionMiddleware(app, **options), scope)
    assert seen == [[(b"host", b"testserver"), headers]]


@pytest.mark.parametrize(
    ("headers", "options"),
    [
        pytest.param((b"cookie", b"sid=cookie-1"), {"cookie": "sid"}, id="cookie"),
        pytest.param((b"x-legacy", b"cookie-1"), {"also_accept": ["X-Legacy"]}, id="also-accept"),
    ],
)
async def test_other_places_are_read_from_a_one_shot_iterable(
    headers: tuple[bytes, bytes], options: dict[str, Any]
) -> None:
    scope = http_scope()
    scope["headers"] = one_shot(headers)
    (start, _) = await run(SessionMiddleware(respond_ok, **options), scope)
    assert session_headers(start) == [b"cookie-1"]


async def test_a_one_shot_response_header_iterable_with_the_apps_own_id_goes_out_whole() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = one_shot((b"content-type", b"text/plain"), (b"mirascope-session-id", b"app-1"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    (start, _) = await run(SessionMiddleware(app), http_scope())
    assert start["headers"] == [
        (b"content-type", b"text/plain"),
        (b"mirascope-session-id", b"app-1"),
    ]


# One exception object raised by many requests.


async def test_an_exception_object_raised_by_many_requests_keeps_one_note() -> None:
    shared = RuntimeError("the same object every time")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise shared

    middleware = SessionMiddleware(app)
    for _ in range(50):
        with pytest.raises(RuntimeError):
            await run(middleware, http_scope((b"mirascope-session-id", b"same-1")))
    assert shared.__notes__ == ["ops-session: raised in session same-1"]


async def test_requests_awaiting_one_failed_task_name_no_other_users_session() -> None:
    shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await shared  # a single-flight call that several users' requests wait on

    middleware = SessionMiddleware(app)
    requests = [
        asyncio.create_task(run(middleware, http_scope((b"mirascope-session-id", user))))
        for user in (b"user-a", b"user-b", b"user-c")
    ]
    await asyncio.sleep(0)
    shared.set_exception(RuntimeError("upstream failed"))
    errors = await asyncio.gather(*requests, return_exceptions=True)
    error = errors[0]
    assert all(raised is error for raised in errors)
    assert isinstance(error, RuntimeError)
    assert error.__notes__ == [SHARED_EXCEPTION_NOTE]
    assert not any("user-" in note for note in error.__notes__)
