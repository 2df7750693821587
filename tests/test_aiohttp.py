from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from ops_session import SESSION_HEADER_NAME, SessionContext, current_session, session
from ops_session._core import add_request_listener, remove_request_listener
from ops_session.aiohttp import STATE_KEY, SessionMiddleware, SessionTraceConfig, setup

from .support.echo_server import NO_HEADER
from .support.hostile import hostile_text
from .support.outgoing import (
    ALLOWED,
    NAMES,
    SESSION_ID,
    allow_list_cases,
    default_name_cases,
    name_cases,
)

SetHosts = Callable[[Iterable[str] | None], None]

pytestmark = pytest.mark.anyio


class LoopbackResolver(AbstractResolver):
    """Resolves the test's host names to loopback addresses, as a DNS override would."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = NAMES.get(host.lower(), host)
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


async def echo(client: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    async with client.get(url, headers=headers) as response:
        return await response.text()


async def test_sends_the_session_to_your_own_hosts_by_default(
    loopback_servers: dict[str, str],
) -> None:
    url = loopback_servers["127.0.0.3"]
    async with aiohttp.ClientSession(trace_configs=[SessionTraceConfig()]) as client:
        assert await echo(client, url, {}) == NO_HEADER
        with session(id="aio-1"):
            assert await echo(client, url, {}) == "aio-1"
            assert await echo(client, url, {SESSION_HEADER_NAME: "mine"}) == "mine"


async def test_sends_the_session_only_to_allowed_hosts(loopback_servers: dict[str, str]) -> None:
    config = SessionTraceConfig(hosts=ALLOWED)
    async with aiohttp.ClientSession(trace_configs=[config]) as client:
        with session(id=SESSION_ID):
            for url, headers, expected in allow_list_cases(loopback_servers):
                assert await echo(client, url, headers) == expected, url


async def test_host_names_match_the_patterns(loopback_servers: dict[str, str]) -> None:
    port = int(loopback_servers["127.0.0.1"].rsplit(":", 1)[1])
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver())
    config = SessionTraceConfig(hosts=ALLOWED)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[config]) as client:
        with session(id=SESSION_ID):
            for url, headers, expected in name_cases(port):
                assert await echo(client, url, headers) == expected, url


async def test_without_a_rule_only_your_own_hosts_get_the_id(
    loopback_servers: dict[str, str],
) -> None:
    """Issue 27, point 18: no `hosts=` and no process rule is `@private`, not every host."""
    port = int(loopback_servers["127.0.0.1"].rsplit(":", 1)[1])
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver())
    config = SessionTraceConfig()
    async with aiohttp.ClientSession(connector=connector, trace_configs=[config]) as client:
        with session(id=SESSION_ID):
            for url, headers, expected in default_name_cases(port):
                assert await echo(client, url, headers) == expected, url


async def test_the_process_rule_governs_configs_without_hosts(
    loopback_servers: dict[str, str], process_hosts: SetHosts
) -> None:
    process_hosts(["127.0.0.3"])
    allowed, other = loopback_servers["127.0.0.3"], loopback_servers["127.0.0.2"]
    async with aiohttp.ClientSession(trace_configs=[SessionTraceConfig()]) as client:
        with session(id=SESSION_ID):
            assert await echo(client, allowed, {}) == SESSION_ID
            assert await echo(client, other, {}) == NO_HEADER


async def test_a_redirect_without_a_usable_location_sends_nothing_further(
    loopback_servers: dict[str, str],
) -> None:
    base = loopback_servers["127.0.0.2"]
    async with aiohttp.ClientSession(trace_configs=[SessionTraceConfig()]) as client:
        with session(id=SESSION_ID), pytest.raises(aiohttp.InvalidUrlRedirectClientError):
            await echo(client, f"{base}/redirect?to=http://[bad", {})


async def test_invalid_hosts_name_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"'api\.internal:8080'"):
        SessionTraceConfig(hosts=["api.internal:8080"])


def test_missing_aiohttp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "ops_session.aiohttp")
    with pytest.raises(ImportError, match=r"install 'ops-session\[aiohttp\]'"):
        importlib.import_module("ops_session.aiohttp")


# The server side: a real aiohttp server on 127.0.0.1, in the test's own event loop.


def _current_id() -> str | None:
    current = current_session()
    return current.id if current else None


def session_app(**options: Any) -> web.Application:
    """An app whose handlers report the session they run in; `setup` with `options`."""
    routes = web.RouteTableDef()

    @routes.get("/session")
    async def read_session(request: web.Request) -> web.Response:
        current = current_session()
        return web.json_response(
            {
                "id": current.id if current else None,
                "attributes": dict(current.attributes or {}) if current else None,
                "request_header": request.headers.get(SESSION_HEADER_NAME),
                "stored": request[STATE_KEY].id,
            }
        )

    @routes.post("/echo-body")
    async def echo_body(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": _current_id(),
                "request_header": request.headers.get(SESSION_HEADER_NAME),
                "body": (await request.read()).decode(),
            }
        )

    @routes.get("/stream")
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # the headers leave here, before the body
        for _ in range(3):
            await asyncio.sleep(0)
            await response.write(f"{_current_id()}\n".encode())
        await response.write_eof()
        return response

    @routes.get("/ws")
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(_current_id() or "none")
        async for message in socket:
            await socket.send_str(f"{message.data}:{_current_id()}")
        return socket

    @routes.get("/error")
    async def fail(request: web.Request) -> web.Response:
        raise RuntimeError("unhandled on purpose")

    @routes.get("/redirect")
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/session")

    @routes.get("/own-header")
    async def own_header(request: web.Request) -> web.Response:
        return web.Response(text="own", headers={SESSION_HEADER_NAME: "app-chosen"})

    app = web.Application()
    app.add_routes(routes)
    setup(app, **options)
    return app


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[aiohttp.ClientSession]:
    """`app` on a free 127.0.0.1 port, and a client whose relative URLs go to it."""
    async with TestServer(app, host="127.0.0.1") as server:
        async with aiohttp.ClientSession(base_url=server.make_url("/")) as client:
            yield client


async def test_server_uses_and_echoes_a_valid_id() -> None:
    async with serving(session_app()) as client:
        async with client.get("/session", headers={SESSION_HEADER_NAME: "aio-srv-1"}) as response:
            assert response.headers.getall(SESSION_HEADER_NAME) == ["aio-srv-1"]
            assert await response.json() == {
                "id": "aio-srv-1",
                "attributes": {},
                "request_header": "aio-srv-1",
                "stored": "aio-srv-1",
            }
    assert current_session() is None


@pytest.mark.parametrize("value", [None, *hostile_text(sendable_only=True)])
async def test_server_replaces_a_missing_or_invalid_id_and_shows_it_to_the_handler(
    value: str | None,
) -> None:
    headers = {} if value is None else {SESSION_HEADER_NAME: value}
    async with serving(session_app()) as client:
        async with client.get("/session", headers=headers) as response:
            (generated,) = response.headers.getall(SESSION_HEADER_NAME)
            body = await response.json()
            text = await response.text()
    assert uuid.UUID(generated).version == 4
    assert body["id"] == body["request_header"] == body["stored"] == generated
    if value:
        assert value not in text


async def test_server_leaves_the_request_header_alone_when_told_to() -> None:
    async with serving(session_app(update_request_header=False)) as client:
        async with client.get("/session", headers={SESSION_HEADER_NAME: "a b"}) as response:
            body = await response.json()
    assert body["request_header"] == "a b"
    assert body["id"] == response.headers[SESSION_HEADER_NAME] != "a b"


async def test_server_keeps_the_request_whose_body_an_outer_middleware_read() -> None:
    @web.middleware
    async def read_body_first(request: web.Request, handler: Any) -> web.StreamResponse:
        await request.read()
        response: web.StreamResponse = await handler(request)
        return response

    app = session_app()
    app.middlewares.insert(0, read_body_first)
    async with serving(app) as client:
        async with client.post("/echo-body", data=b"payload") as response:
            body = await response.json()
    assert body["body"] == "payload"
    assert body["id"] == response.headers[SESSION_HEADER_NAME]
    assert body["request_header"] is None  # aiohttp cannot clone a request whose body was read


async def test_server_header_on_streamed_body_and_websocket_handshake() -> None:
    headers = {SESSION_HEADER_NAME: "aio-stream-1"}
    async with serving(session_app()) as client:
        async with client.get("/stream", headers=headers) as response:
            assert response.headers[SESSION_HEADER_NAME] == "aio-stream-1"
            assert (await response.text()).split() == ["aio-stream-1"] * 3
        async with client.ws_connect("/ws", headers=headers) as websocket:
            assert websocket._response.headers[SESSION_HEADER_NAME] == "aio-stream-1"
            assert await websocket.receive_str() == "aio-stream-1"
            await websocket.send_str("ping")
            assert await websocket.receive_str() == "ping:aio-stream-1"


async def test_server_500_carries_the_header_and_the_log_names_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(session_app()) as client:
        with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
            async with client.get("/error", headers={SESSION_HEADER_NAME: "err-1"}) as failed:
                assert failed.status == 500
                assert failed.headers.getall(SESSION_HEADER_NAME) == ["err-1"]
        async with client.get("/session") as after:
            assert (await after.json())["id"] not in (None, "err-1")
    (record,) = [record for record in caplog.records if record.exc_info]
    assert record.exc_info is not None and record.exc_info[1] is not None
    assert record.exc_info[1].__notes__ == ["ops-session: raised in session err-1"]


async def test_server_header_on_http_exceptions_and_not_twice() -> None:
    headers = {SESSION_HEADER_NAME: "aio-exc-1"}
    async with serving(session_app()) as client:
        async with client.get("/redirect", headers=headers, allow_redirects=False) as found:
            assert found.status == 302
            assert found.headers.getall(SESSION_HEADER_NAME) == ["aio-exc-1"]
        async with client.get("/no-such-route", headers=headers) as missing:
            assert missing.status == 404
            assert missing.headers.getall(SESSION_HEADER_NAME) == ["aio-exc-1"]
        async with client.get("/own-header", headers=headers) as own:
            assert own.headers.getall(SESSION_HEADER_NAME) == ["app-chosen"]


@pytest.mark.parametrize("value", hostile_text(sendable_only=True))
async def test_server_reject_mode_answers_400_without_the_header(value: str) -> None:
    async with serving(session_app(on_invalid="reject")) as client:
        async with client.get("/session", headers={SESSION_HEADER_NAME: value}) as response:
            assert response.status == 400
            assert await response.text() == "Invalid Mirascope-Session-Id header.\n"
            assert SESSION_HEADER_NAME not in response.headers
        async with client.get("/session", headers={SESSION_HEADER_NAME: "fine-1"}) as response:
            assert (await response.json())["id"] == "fine-1"


async def test_server_attributes_from_the_request() -> None:
    def attributes(request: web.Request) -> dict[str, str]:
        return {"path": request.path}

    async with serving(session_app(attributes=attributes)) as client:
        async with client.get("/session") as response:
            assert (await response.json())["attributes"] == {"path": "/session"}


async def test_server_reads_other_places_and_sets_the_cookie() -> None:
    app = session_app(
        also_accept=["X-Request-Id"], query_param="sid", cookie="sid", set_cookie=True
    )
    async with serving(app) as client:
        async with client.get("/session", headers={"X-Request-Id": "other-1"}) as response:
            assert (await response.json())["id"] == "other-1"
            assert response.headers[SESSION_HEADER_NAME] == "other-1"
            assert response.headers["Set-Cookie"].startswith("sid=other-1; Path=/;")
        async with client.get("/session?sid=query%2D1") as response:
            assert (await response.json())["id"] == "query-1"
        client.cookie_jar.clear()
        headers = {"Cookie": "sid=cookie-1"}
        async with client.get("/session", headers=headers) as response:
            assert (await response.json())["id"] == "cookie-1"
        async with client.get("/own-header", headers=headers) as response:
            assert "Set-Cookie" not in response.headers  # only where the session header went


async def test_server_cookie_follows_the_shared_rules() -> None:
    """The same rules as every adapter: an id from a link is never persisted, the response
    says it varies on the cookie, and a cookie the handler set is left alone."""
    app = session_app(query_param="sid", cookie="sid", set_cookie=True)

    async def own_cookie(request: web.Request) -> web.Response:
        response = web.Response(text="own", headers={"Cache-Control": "no-store"})
        response.set_cookie("sid", "handler-chosen")
        return response

    app.router.add_get("/own-cookie", own_cookie)
    async with serving(app) as client:
        async with client.get("/session?sid=from-a-link") as response:
            assert response.headers[SESSION_HEADER_NAME] == "from-a-link"
            assert "Set-Cookie" not in response.headers
        async with client.get("/session", headers={SESSION_HEADER_NAME: "hdr-1"}) as response:
            assert response.headers["Set-Cookie"].startswith("sid=hdr-1;")
            assert response.headers["Vary"] == "Cookie"
            assert response.headers["Cache-Control"] == "private"
        async with client.get("/own-cookie", headers={SESSION_HEADER_NAME: "h-2"}) as response:
            assert response.headers.getall("Set-Cookie") == ["sid=handler-chosen; Path=/"]
            assert response.headers["Cache-Control"] == "no-store"


async def test_server_rejection_clears_a_stale_cookie() -> None:
    app = session_app(cookie="sid", set_cookie=True, on_invalid="reject")
    async with serving(app) as client:
        async with client.get("/session", headers={"Cookie": "sid=bad value"}) as response:
            assert response.status == 400
            assert response.headers["Set-Cookie"].startswith("sid=;")
            assert "Max-Age=0" in response.headers["Set-Cookie"]


async def test_server_default_header_name_is_the_process_one(
    process_header_name: Callable[[str | None], None],
) -> None:
    process_header_name("X-Conversation-Id")
    async with serving(session_app()) as client:
        async with client.get("/session", headers={"X-Conversation-Id": "conv-1"}) as response:
            assert response.headers["X-Conversation-Id"] == "conv-1"
            assert (await response.json())["id"] == "conv-1"


async def test_server_sends_no_cookie_that_cannot_hold_the_id() -> None:
    app = session_app(validator=lambda value: True, cookie="sid", set_cookie=True)
    async with serving(app) as client:
        async with client.get("/session", headers={SESSION_HEADER_NAME: "a;b"}) as response:
            assert response.headers[SESSION_HEADER_NAME] == "a;b"
            assert "Set-Cookie" not in response.headers


async def test_server_sub_applications_run_in_the_parent_session() -> None:
    parent = session_app()
    child = web.Application()

    async def child_session(request: web.Request) -> web.Response:
        return web.Response(text=_current_id() or "none")

    child.router.add_get("/session", child_session)
    parent.add_subapp("/child", child)
    async with serving(parent) as client:
        headers = {SESSION_HEADER_NAME: "parent-1"}
        async with client.get("/child/session", headers=headers) as response:
            assert await response.text() == "parent-1"
            assert response.headers.getall(SESSION_HEADER_NAME) == ["parent-1"]


async def test_server_request_listeners_hear_each_session() -> None:
    heard: list[tuple[str, str | None]] = []

    def listener(context: SessionContext) -> None:
        heard.append((context.id, _current_id()))

    add_request_listener(listener)
    try:
        async with serving(session_app()) as client:
            async with client.get("/session", headers={SESSION_HEADER_NAME: "heard-1"}):
                pass
    finally:
        remove_request_listener(listener)
    assert heard == [("heard-1", "heard-1")]


async def test_server_concurrent_requests_never_cross() -> None:
    async def one(client: aiohttp.ClientSession, number: int) -> tuple[str, str, str]:
        headers = {SESSION_HEADER_NAME: f"conc-{number}"}
        async with client.get("/stream", headers=headers) as response:
            return (
                headers[SESSION_HEADER_NAME],
                response.headers[SESSION_HEADER_NAME],
                (await response.text()),
            )

    async with serving(session_app()) as client:
        results = await asyncio.gather(*(one(client, number) for number in range(50)))
    assert all(sent == echoed and body.split() == [sent] * 3 for sent, echoed, body in results)


def test_setup_twice_and_bad_options_are_refused() -> None:
    app = session_app()
    with pytest.raises(RuntimeError, match="setup\\(\\) was already called"):
        setup(app)
    with pytest.raises(ValueError, match="on_invalid must be 'generate' or 'reject'"):
        SessionMiddleware(on_invalid="drop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="did you mean 'on_invalid'"):
        SessionMiddleware(on_invalide="reject")  # type: ignore[call-arg]
