"""The `baggage` option: `session.id` read from W3C baggage, and put into OpenTelemetry's.

Covers `_baggage.py` (the reader and the outgoing rule) and `_otel_baggage.py` through the ASGI,
WSGI and Django middlewares. `tests/live/test_baggage.py` sends it between two real services.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory, override_settings
from flask import Flask
from opentelemetry.baggage import get_baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import Client

from ops_session import (
    SESSION_HEADER_NAME,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
    is_valid_session_id,
)
from ops_session._baggage import baggage_session_id
from ops_session._outgoing import may_carry_session
from ops_session._policy import SessionPolicy
from ops_session._rules import set_outgoing_carriers
from ops_session.aiohttp import setup as aiohttp_setup
from ops_session.django import SessionMiddleware as DjangoSessionMiddleware

from .support.asgi import http_scope, run, session_headers
from .support.django_settings import configure_django
from .support.hostile import hostile_bytes

configure_django()

HostsSetter = Callable[[Iterable[str] | None], None]
DEFAULT_PROPAGATORS = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def what_the_app_sees() -> dict[str, Any]:
    """The session, the baggage entry, and the `baggage` header OpenTelemetry would send."""
    current = current_session()
    carrier: dict[str, str] = {}
    # OpenTelemetry's default propagators, named here rather than read from the global one,
    # which another test in this process (Mirascope's `configure`) may have replaced.
    DEFAULT_PROPAGATORS.inject(carrier)
    return {
        "session": current.id if current else None,
        "baggage": get_baggage("session.id"),
        "sent": carrier.get("baggage"),
    }


async def asgi_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(what_the_app_sees())


def asgi_client(**options: Any) -> httpx.AsyncClient:
    app = SessionMiddleware(Starlette(routes=[Route("/", asgi_endpoint)]), **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


def wsgi_client(**options: Any) -> Client:
    flask_app = Flask(__name__)
    flask_app.get("/")(what_the_app_sees)
    return Client(WSGISessionMiddleware(flask_app.wsgi_app, **options))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("session.id=chat-42", "chat-42", id="alone"),
        pytest.param("a=1, session.id = chat-42 ,b=2", "chat-42", id="spaces"),
        pytest.param("a=1,\tsession.id=chat-42", "chat-42", id="tab"),
        pytest.param("session.id=chat-42;ttl=3", "chat-42", id="properties"),
        pytest.param("session.id=chat%3A42%2B1", "chat:42+1", id="percent-encoded"),
        pytest.param("session.id=a+b", "a b", id="plus-is-space"),
        pytest.param("session.id=one,session.id=two", "one", id="first-wins"),
        pytest.param("session.id=", None, id="empty-value"),
        pytest.param("session.id", None, id="no-equals"),
        pytest.param("session.idx=1,xsession.id=2", None, id="other-keys"),
        pytest.param(",,;=,=,session.id=ok", "ok", id="malformed-members-skipped"),
        pytest.param("k=v," * 179 + "session.id=last", "last", id="180th-entry"),
        pytest.param("k=v," * 180 + "session.id=late", None, id="181st-entry"),
        pytest.param("session.id=early," + "k" * 8200, None, id="over-8192"),
    ],
)
def test_reads_session_id_from_a_baggage_header(header: str | None, expected: str | None) -> None:
    assert baggage_session_id(header) == expected


def test_baggage_is_a_carrier_without_a_host_that_a_rule_must_name(
    process_carriers: HostsSetter,
) -> None:
    process_carriers(None)
    assert not may_carry_session("baggage", None), "baggage reaches third parties by default"
    process_carriers(["baggage"])
    assert may_carry_session("baggage", None)


# --- ASGI ---------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"baggage": "session.id=chat-42"}, "chat-42", id="baggage-only"),
        pytest.param(
            {SESSION_HEADER_NAME: "chat-1", "baggage": "session.id=chat-42"},
            "chat-1",
            id="header-wins",
        ),
        pytest.param(
            {SESSION_HEADER_NAME: "a b", "baggage": "session.id=chat-42"},
            None,
            id="invalid-header-is-not-overridden",
        ),
        pytest.param({"baggage": "session.id=chat-1;ttl=5, other=x"}, "chat-1", id="properties"),
    ],
)
async def test_asgi_reads_baggage_only_without_a_session_header(
    headers: dict[str, str], expected: str | None
) -> None:
    async with asgi_client(baggage=True) as client:
        response = await client.get("/", headers=headers)
    seen = response.json()
    if expected is None:
        assert seen["session"] != "chat-42" and is_valid_session_id(seen["session"])
    else:
        assert seen["session"] == expected
    assert response.headers[SESSION_HEADER_NAME] == seen["session"]


@pytest.mark.anyio
@pytest.mark.parametrize("value", hostile_bytes())
async def test_asgi_hostile_baggage_gets_a_new_id_and_is_never_echoed(value: bytes) -> None:
    seen: list[str | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(what_the_app_sees()["session"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(app, baggage=True)
    start, _ = await run(middleware, http_scope((b"baggage", b"a=1,session.id=" + value)))
    (echoed,) = session_headers(start)
    assert start["status"] == 200 and seen == [echoed.decode()]
    assert is_valid_session_id(echoed.decode()) and value not in echoed


@pytest.mark.anyio
async def test_asgi_rejects_invalid_baggage_when_asked_and_names_the_place() -> None:
    async with asgi_client(baggage=True, on_invalid="reject") as client:
        rejected = await client.get("/", headers={"baggage": "session.id=%3Cscript%3E"})
        oversized = await client.get("/", headers={"baggage": "k=v," * 3000})
    assert rejected.status_code == 400
    assert "session.id baggage entry" in rejected.text and "script" not in rejected.text
    assert oversized.status_code == 200  # baggage past the W3C limits is not read at all


@pytest.mark.anyio
async def test_asgi_ignores_baggage_unless_asked() -> None:
    async with asgi_client() as client:
        response = await client.get("/", headers={"baggage": "session.id=chat-42"})
    seen = response.json()
    assert seen["session"] != "chat-42"
    assert seen["baggage"] is None  # nor does it put the session into OpenTelemetry's baggage


@pytest.mark.anyio
async def test_asgi_puts_the_id_into_outgoing_baggage_for_the_request_only() -> None:
    async with asgi_client(baggage=True) as client:
        response = await client.get("/", headers={SESSION_HEADER_NAME: "chat-42"})
    assert response.json() == {
        "session": "chat-42",
        "baggage": "chat-42",
        "sent": "session.id=chat-42",
    }
    assert get_baggage("session.id") is None  # detached when the request ended


@pytest.mark.anyio
async def test_asgi_outgoing_baggage_keeps_to_the_carrier_rule(
    process_carriers: HostsSetter,
) -> None:
    process_carriers(["celery"])  # the stock propagator cannot see hosts: nothing goes
    async with asgi_client(baggage=True) as client:
        response = await client.get("/", headers={SESSION_HEADER_NAME: "chat-42"})
    assert response.json() == {"session": "chat-42", "baggage": None, "sent": None}


@pytest.mark.anyio
async def test_asgi_app_errors_still_detach_the_baggage() -> None:
    async def failing(request: Request) -> JSONResponse:
        raise RuntimeError("boom")

    app = SessionMiddleware(Starlette(routes=[Route("/", failing)]), baggage=True)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/", headers={"baggage": "session.id=chat-42"})
    assert response.status_code == 500
    assert get_baggage("session.id") is None


# --- WSGI and Django ----------------------------------------------------------------------------


def test_wsgi_reads_baggage_and_sends_it_on() -> None:
    client = wsgi_client(baggage=True)
    from_baggage = client.get("/", headers={"Baggage": "a=1,session.id=chat-42"})
    header_wins = client.get(
        "/", headers={SESSION_HEADER_NAME: "chat-1", "Baggage": "session.id=chat-42"}
    )
    assert from_baggage.json == {
        "session": "chat-42",
        "baggage": "chat-42",
        "sent": "session.id=chat-42",
    }
    assert from_baggage.headers[SESSION_HEADER_NAME] == "chat-42"
    assert header_wins.json is not None and header_wins.json["session"] == "chat-1"
    assert get_baggage("session.id") is None


def test_wsgi_ignores_baggage_unless_asked() -> None:
    seen = wsgi_client().get("/", headers={"Baggage": "session.id=chat-42"}).json
    assert seen is not None and seen["session"] != "chat-42" and seen["baggage"] is None


def django_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse(what_the_app_sees())


async def async_django_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse(what_the_app_sees())


@override_settings(OPS_SESSION={"baggage": True})
def test_django_reads_baggage_and_sends_it_on() -> None:
    request = RequestFactory().get("/", HTTP_BAGGAGE="session.id=chat-42")
    response = DjangoSessionMiddleware(django_view)(request)
    assert isinstance(response, JsonResponse)
    assert response[SESSION_HEADER_NAME] == "chat-42"
    assert (
        response.content
        == b'{"session": "chat-42", "baggage": "chat-42", "sent": "session.id=chat-42"}'
    )
    assert get_baggage("session.id") is None


@pytest.mark.anyio
@override_settings(OPS_SESSION={"baggage": True})
async def test_django_async_reads_baggage_and_sends_it_on() -> None:
    request = RequestFactory().get("/", HTTP_BAGGAGE="session.id=chat-43")
    response = await DjangoSessionMiddleware(async_django_view)(request)  # type: ignore[misc]
    assert response[SESSION_HEADER_NAME] == "chat-43"
    assert get_baggage("session.id") is None


def test_django_ignores_baggage_unless_asked() -> None:
    request = RequestFactory().get("/", HTTP_BAGGAGE="session.id=chat-42")
    response = DjangoSessionMiddleware(django_view)(request)
    assert isinstance(response, HttpResponse) and response[SESSION_HEADER_NAME] != "chat-42"


# --- aiohttp's own server ---------------------------------------------------------------------


async def aiohttp_endpoint(request: web.Request) -> web.Response:
    return web.json_response(what_the_app_sees())


@pytest.mark.anyio
async def test_aiohttp_reads_baggage_and_sends_it_on() -> None:
    app = web.Application()
    app.router.add_get("/", aiohttp_endpoint)
    aiohttp_setup(app, baggage=True)
    async with TestServer(app, host="127.0.0.1") as server:
        async with aiohttp.ClientSession(base_url=server.make_url("/")) as client:
            async with client.get("/", headers={"Baggage": "session.id=chat-42"}) as response:
                seen = await response.json()
                assert response.headers[SESSION_HEADER_NAME] == "chat-42"
    assert seen == {"session": "chat-42", "baggage": "chat-42", "sent": "session.id=chat-42"}
    assert get_baggage("session.id") is None


# --- options ------------------------------------------------------------------------------------


def test_the_variable_turns_it_on() -> None:
    from ops_session._environ import middleware_options

    assert middleware_options({"OPS_SESSION_BAGGAGE": "true"}) == {"baggage": True}
    with pytest.raises(ValueError, match="OPS_SESSION_BAGGAGE is invalid"):
        middleware_options({"OPS_SESSION_BAGGAGE": "sometimes"})


def test_misuse_raises_errors_that_say_what_to_do() -> None:
    with pytest.raises(TypeError, match="baggage must be a bool"):
        SessionMiddleware(Starlette(), baggage="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="leave also_accept, baggage"):
        SessionPolicy(
            header_name=SESSION_HEADER_NAME,
            generator=lambda: "x",
            validator=is_valid_session_id,
            on_invalid="generate",
            attributes=None,
            update_request_header=True,
            baggage=True,
        )


def test_missing_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.baggage", None)
    monkeypatch.delitem(sys.modules, "ops_session._otel_baggage", raising=False)
    with pytest.raises(ImportError, match=r"install 'ops-session\[otel\]'"):
        importlib.import_module("ops_session._otel_baggage")
    with pytest.raises(ImportError, match=r"install 'ops-session\[otel\]'"):
        SessionMiddleware(Starlette(), baggage=True)


@pytest.fixture(autouse=True)
def no_baggage_left() -> Iterator[None]:
    yield
    assert get_baggage("session.id") is None


@pytest.fixture(autouse=True)
def baggage_may_carry_the_id() -> Iterator[None]:
    """The rule that lets the id into outgoing baggage, which no default does."""
    set_outgoing_carriers(["baggage"])
    yield
    set_outgoing_carriers(None)
