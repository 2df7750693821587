from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
import requests
import rq.queue
import rq.worker
from celery import Celery
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from starlette.applications import Starlette
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client
from whitenoise import WhiteNoise  # type: ignore[import-untyped]

import ops_session.celery
from ops_session import (
    SESSION_HEADER_NAME,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
    install,
    session,
    set_outgoing_hosts,
)
from ops_session._install import install_automatically
from ops_session.httpx import AsyncSessionHeaderHook, SessionHeaderHook
from ops_session.instrumentation import DJANGO_MIDDLEWARE, SessionInstrumentor
from ops_session.otel import SessionSpanProcessor
from ops_session.rq import SessionJob

from .support.django_settings import configure_django
from .support.echo_server import NO_HEADER

pytestmark = pytest.mark.anyio

HEADERS = {SESSION_HEADER_NAME: "zero-1"}


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


@pytest.fixture
def instrumented(
    monkeypatch: pytest.MonkeyPatch, provider: TracerProvider
) -> Iterator[SessionInstrumentor]:
    monkeypatch.setenv("OPS_SESSION_ATTRIBUTES", '{"from": "environment"}')
    instrumentor = SessionInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield instrumentor
    instrumentor.uninstrument()


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/session")
    async def read() -> dict[str, Any]:
        current = current_session()
        assert current is not None
        return {"id": current.id, "attributes": current.attributes}

    return app


async def get(app: Any, headers: dict[str, str] = HEADERS) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/session", headers=headers)


def flask_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/session")
    def read() -> dict[str, Any]:
        current = current_session()
        assert current is not None
        return {"id": current.id, "attributes": current.attributes}

    return app


def test_registered_under_the_opentelemetry_instrumentor_entry_point() -> None:
    (entry_point,) = entry_points(group="opentelemetry_instrumentor", name="ops_session")
    assert entry_point.load() is SessionInstrumentor
    assert SessionInstrumentor().instrumentation_dependencies() == ()


async def test_every_fastapi_and_starlette_app_gets_sessions(
    instrumented: SessionInstrumentor,
) -> None:
    response = await get(fastapi_app())
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["zero-1"]
    assert response.json() == {"id": "zero-1", "attributes": {"from": "environment"}}
    starlette_app = Starlette()
    assert isinstance(starlette_app, Starlette)
    assert (await get(starlette_app)).headers[SESSION_HEADER_NAME] == "zero-1"  # a 404 too


async def test_an_app_with_its_own_layer_keeps_it_alone(instrumented: SessionInstrumentor) -> None:
    app = fastapi_app()
    app.add_middleware(SessionMiddleware, attributes={"from": "the app"})
    response = await get(app)
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["zero-1"]
    assert response.json()["attributes"] == {"from": "the app"}


async def test_install_in_code_replaces_the_automatic_layer(
    instrumented: SessionInstrumentor,
) -> None:
    app = install(fastapi_app(), attributes={"from": "install"})
    assert (await get(app)).json()["attributes"] == {"from": "install"}


def test_every_flask_app_gets_sessions_unless_it_wraps_its_own(
    instrumented: SessionInstrumentor,
) -> None:
    response = Client(flask_app()).get("/session", headers=HEADERS)
    assert response.headers.get_all(SESSION_HEADER_NAME) == ["zero-1"]
    assert response.json == {"id": "zero-1", "attributes": {"from": "environment"}}
    own = flask_app()
    own.wsgi_app = WSGISessionMiddleware(  # type: ignore[method-assign]
        own.wsgi_app, attributes={"from": "the app"}
    )
    response = Client(own).get("/session", headers=HEADERS)
    assert response.headers.get_all(SESSION_HEADER_NAME) == ["zero-1"]
    assert response.json == {"id": "zero-1", "attributes": {"from": "the app"}}


def test_a_flask_app_wrapped_in_other_middleware_still_gets_sessions(
    instrumented: SessionInstrumentor,
) -> None:
    app = flask_app()
    app.wsgi_app = ProxyFix(app.wsgi_app)  # type: ignore[method-assign]
    response = Client(app).get("/session", headers=HEADERS)
    assert response.json == {"id": "zero-1", "attributes": {"from": "environment"}}


def test_installing_automatically_twice_or_on_another_object_does_nothing(
    instrumented: SessionInstrumentor,
) -> None:
    app = fastapi_app()  # installed automatically once, already
    install_automatically(app)
    install_automatically(Plain())
    assert type(app).__mro__[1] is FastAPI


class Plain:
    pass


def test_clients_send_the_session_within_the_allow_list(
    instrumented: SessionInstrumentor, echo_url: str
) -> None:
    with session(id="zero-2"):
        with httpx.Client() as client:
            assert client.get(echo_url).text == "zero-2"
        with requests.Session() as http:
            assert http.get(echo_url, timeout=10).text == "zero-2"
        set_outgoing_hosts(["api.internal"])
        try:
            with httpx.Client() as client:
                assert client.get(echo_url).text != "zero-2"
        finally:
            set_outgoing_hosts(None)


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param(SessionHeaderHook(hosts=["127.0.0.2"]), id="own-hosts"),
        pytest.param(SessionHeaderHook(hosts=[]), id="no-host"),
    ],
)
def test_a_client_built_with_its_own_session_hook_keeps_it(
    instrumented: SessionInstrumentor,
    loopback_servers: dict[str, str],
    hook: SessionHeaderHook,
) -> None:
    """Issue 27, point 1: the zero-code layer must not replace a client's explicit rule."""
    client = httpx.Client(event_hooks={"request": [hook]}, trust_env=False)
    with client, session(id="zero-6"):
        assert client.event_hooks["request"] == [hook]
        expected = "zero-6" if hook.hosts and hook.hosts.allows("127.0.0.2") else NO_HEADER
        assert client.get(loopback_servers["127.0.0.2"]).text == expected
        assert client.get(loopback_servers["127.0.0.1"]).text == NO_HEADER


async def test_an_async_client_built_with_its_own_session_hook_keeps_it(
    instrumented: SessionInstrumentor, loopback_servers: dict[str, str]
) -> None:
    hook = AsyncSessionHeaderHook(hosts=["127.0.0.2"])
    client = httpx.AsyncClient(event_hooks={"request": [hook]}, trust_env=False)
    async with client:
        with session(id="zero-7"):
            assert client.event_hooks["request"] == [hook]
            assert (await client.get(loopback_servers["127.0.0.2"])).text == "zero-7"
            assert (await client.get(loopback_servers["127.0.0.1"])).text == NO_HEADER


async def test_the_header_variable_governs_the_middleware_and_the_clients(
    monkeypatch: pytest.MonkeyPatch, provider: TracerProvider, echo_url: str
) -> None:
    """Issue 27, point 7: one variable names the header the app reads, answers and sends."""
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "X-Conversation-Id")
    instrumentor = SessionInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        app = FastAPI()

        @app.get("/session")
        def forward() -> dict[str, str]:
            with httpx.Client() as client, requests.Session() as http:
                return {"httpx": client.get(echo_url).text, "requests": http.get(echo_url).text}

        response = await get(app, {"X-Conversation-Id": "named-1"})
    finally:
        instrumentor.uninstrument()
    assert response.headers.get("X-Conversation-Id") == "named-1"
    assert response.json() == {"httpx": "named-1", "requests": "named-1"}


def test_celery_apps_and_rq_queues_carry_sessions(instrumented: SessionInstrumentor) -> None:
    app = Celery("zero")
    assert app in ops_session.celery._apps
    ops_session.celery.propagate_sessions(app)  # by hand as well: still once
    assert rq.queue.Queue.job_class is SessionJob
    assert rq.worker.BaseWorker.job_class is SessionJob


def test_the_configured_provider_stamps_spans_once(
    provider: TracerProvider, instrumented: SessionInstrumentor
) -> None:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with session(id="zero-3"), provider.get_tracer("tests").start_as_current_span("work"):
        pass
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["session.id"] == "zero-3"
    instrumented.uninstrument()
    instrumented.instrument(tracer_provider=provider)  # again: no second processor
    processors = provider._active_span_processor._span_processors
    assert sum(isinstance(processor, SessionSpanProcessor) for processor in processors) == 1


def test_a_provider_without_the_sdk_is_left_alone() -> None:
    instrumentor = SessionInstrumentor()
    # A processor cannot be added to it (no add_span_processor): instrument() must not try.
    instrumentor.instrument(tracer_provider=NoOpTracerProvider())
    instrumentor.uninstrument()


def test_log_records_carry_the_session(instrumented: SessionInstrumentor) -> None:
    record = logging.getLogger("tests").makeRecord("tests", logging.INFO, "f", 1, "m", (), None)
    assert vars(record)["session_id"] == "-"


def test_uninstrument_puts_everything_back(monkeypatch: pytest.MonkeyPatch) -> None:
    before = (
        Starlette.__init__,
        FastAPI.__init__,
        flask.Flask.__init__,
        httpx.Client.__init__,
        requests.Session.__init__,
        Celery.__init__,
        rq.queue.Queue.job_class,
        logging.getLogRecordFactory(),
    )
    instrumentor = SessionInstrumentor()
    instrumentor.instrument()
    assert FastAPI.__init__ is not before[1]
    instrumentor.uninstrument()
    after = (
        Starlette.__init__,
        FastAPI.__init__,
        flask.Flask.__init__,
        httpx.Client.__init__,
        requests.Session.__init__,
        Celery.__init__,
        rq.queue.Queue.job_class,
        logging.getLogRecordFactory(),
    )
    assert after == before
    assert SESSION_HEADER_NAME not in Client(flask_app()).get("/session").headers


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("OPS_SESSION_HEADER_NAME", "Bad Name", id="header-name"),
        pytest.param("OPS_SESSION_ON_INVALID", "ignore", id="on-invalid"),
        pytest.param("OPS_SESSION_ATTRIBUTES", "[1, 2]", id="attributes-not-object"),
        pytest.param("OPS_SESSION_ATTRIBUTES", "{bad json", id="attributes-not-json"),
        pytest.param("OPS_SESSION_UPDATE_REQUEST_HEADER", "maybe", id="boolean"),
        pytest.param("OPS_SESSION_GENERATOR", "no_such_module.make", id="generator-import"),
        pytest.param("OPS_SESSION_GENERATOR", "make", id="generator-not-dotted"),
        pytest.param("OPS_SESSION_VALIDATOR", "json.__doc__", id="validator-not-callable"),
        pytest.param("OPS_SESSION_SET_COOKIE", "true", id="set-cookie-without-cookie"),
        pytest.param("OPS_SESSION_COOKIE_MAX_AGE", "a day", id="max-age"),
        pytest.param("OPS_SESSION_OUTGOING_HOSTS", "https://api.internal", id="outgoing-hosts"),
    ],
)
def test_a_bad_variable_stops_startup_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=f"ops-session: {variable}"):
        SessionInstrumentor().instrument()
    assert FastAPI.__init__.__qualname__ == "FastAPI.__init__"  # nothing was patched


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from ops_session._environ import middleware_options

    environ = {
        "OPS_SESSION_HEADER_NAME": "X-Conversation",
        "OPS_SESSION_GENERATOR": "ops_session.generate_session_id",
        "OPS_SESSION_VALIDATOR": "ops_session.is_valid_session_id",
        "OPS_SESSION_ON_INVALID": "reject",
        "OPS_SESSION_ATTRIBUTES": json.dumps({"team": "chat"}),
        "OPS_SESSION_UPDATE_REQUEST_HEADER": "no",
        "OPS_SESSION_ALSO_ACCEPT": "X-Mirascope-Session-Id, X-Session",
        "OPS_SESSION_QUERY_PARAM": "session_id",
        "OPS_SESSION_COOKIE": "sid",
        "OPS_SESSION_SET_COOKIE": "yes",
        "OPS_SESSION_COOKIE_MAX_AGE": "3600",
        "OPS_SESSION_UNRELATED": "ignored",
    }
    options = middleware_options(environ)
    assert options["header_name"] == "X-Conversation"
    assert options["on_invalid"] == "reject"
    assert options["attributes"] == {"team": "chat"}
    assert options["update_request_header"] is False
    assert options["also_accept"] == ("X-Mirascope-Session-Id", "X-Session")
    assert (options["cookie"], options["set_cookie"], options["cookie_max_age"]) == (
        "sid",
        True,
        3600,
    )
    assert middleware_options({"OPS_SESSION_COOKIE": "  "}) == {}


@pytest.mark.parametrize("own_settings", [False, True], ids=["environment", "own-settings"])
def test_django_projects_get_the_middleware_first(
    instrumented: SessionInstrumentor, own_settings: bool
) -> None:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    configure_django()
    overrides: dict[str, Any] = {"MIDDLEWARE": ["django.middleware.common.CommonMiddleware"]}
    if own_settings:
        overrides["OPS_SESSION"] = {"attributes": {"from": "settings"}}
    with override_settings(**overrides):
        if not own_settings:
            del settings.OPS_SESSION
        WSGIHandler()  # loads the middleware
        assert settings.MIDDLEWARE == [DJANGO_MIDDLEWARE, *overrides["MIDDLEWARE"]]
        expected = {"from": "settings"} if own_settings else {"from": "environment"}
        assert settings.OPS_SESSION["attributes"] == expected
        WSGIHandler()  # again: still once
        assert settings.MIDDLEWARE.count(DJANGO_MIDDLEWARE) == 1


def test_libraries_that_are_not_installed_are_passed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "starlette.applications",
        "fastapi.applications",
        "flask.app",
        "django.core.handlers.base",
        "httpx",
        "requests",
        "celery.app.base",
        "rq.queue",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    before = FastAPI.__init__
    instrumentor = SessionInstrumentor()
    instrumentor.instrument()
    try:
        assert instrumentor._patches == []
        assert FastAPI.__init__ is before
    finally:
        instrumentor.uninstrument()


def test_missing_opentelemetry_instrumentation_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.instrumentor", None)
    monkeypatch.delitem(sys.modules, "ops_session.instrumentation")
    with pytest.raises(ImportError, match=r"install 'ops-session\[otel\]'"):
        importlib.import_module("ops_session.instrumentation")


def test_the_apps_own_propagate_sessions_wins(instrumented: SessionInstrumentor) -> None:
    app = Celery("own-choice", set_as_current=False)  # patched: propagates with generate=False
    ops_session.celery.propagate_sessions(app, generate=True)  # imports, and the choice stands
    assert ops_session.celery._apps[app] is True


COOKIE_OPTIONS: dict[str, Any] = {"cookie": "sid", "set_cookie": True}


def one_layer(response_headers: list[tuple[str, str]], body_id: str) -> None:
    """What a request carrying only the cookie `sid=cookie-1` gets back from one layer of ours."""
    assert body_id == "cookie-1"  # the explicit layer's cookie was read: no new id
    names = [name.lower() for name, _ in response_headers]
    assert names.count(SESSION_HEADER_NAME.lower()) == 1
    set_cookies = [value for name, value in response_headers if name.lower() == "set-cookie"]
    assert len(set_cookies) == 1 and set_cookies[0].startswith("sid=cookie-1;")


async def test_an_app_wrapped_in_our_asgi_layer_outside_runs_that_layer_alone(
    instrumented: SessionInstrumentor,
) -> None:
    app = SessionMiddleware(fastapi_app(), **COOKIE_OPTIONS)  # the form docs/browsers.md shows
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/session", headers={"Cookie": "sid=cookie-1"})
    one_layer(list(response.headers.multi_items()), response.json()["id"])
    assert response.json()["attributes"] is None  # not the environment's: that layer never ran


@pytest.mark.parametrize("outside", [False, True], ids=["whitenoise-inside", "ours-outside"])
def test_a_flask_app_with_our_wsgi_layer_anywhere_runs_that_layer_alone(
    instrumented: SessionInstrumentor, outside: bool, tmp_path: Path
) -> None:
    app = flask_app()
    served: Any = app
    if outside:
        served = WSGISessionMiddleware(app, **COOKIE_OPTIONS)
    else:
        # WhiteNoise keeps the app it wraps as `.application`, not `.app`.
        app.wsgi_app = WhiteNoise(  # type: ignore[method-assign]
            WSGISessionMiddleware(app.wsgi_app, **COOKIE_OPTIONS), root=str(tmp_path)
        )
    response = Client(served, use_cookies=False).get("/session", headers={"Cookie": "sid=cookie-1"})
    body = response.json
    assert body is not None
    one_layer(list(response.headers.items()), body["id"])
    assert body["attributes"] is None


def test_every_variable_reaches_django_and_its_middleware_loads(
    monkeypatch: pytest.MonkeyPatch, provider: TracerProvider
) -> None:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    for variable, value in {
        "OPS_SESSION_COOKIE": "sid",
        "OPS_SESSION_SET_COOKIE": "true",
        "OPS_SESSION_COOKIE_MAX_AGE": "600",
        "OPS_SESSION_QUERY_PARAM": "session_id",
        "OPS_SESSION_ALSO_ACCEPT": "X-Mirascope-Session-Id",
    }.items():
        monkeypatch.setenv(variable, value)
    configure_django()
    instrumentor = SessionInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with override_settings(MIDDLEWARE=[]):
            del settings.OPS_SESSION  # the environment's options are copied in
            handler = WSGIHandler()  # loads the middleware: no ImproperlyConfigured
            response = Client(handler, use_cookies=False).get(
                "/session", headers={"Cookie": "sid=cookie-1"}
            )
    finally:
        instrumentor.uninstrument()
    assert response.headers[SESSION_HEADER_NAME] == "cookie-1"
    assert response.headers["Set-Cookie"].strip().startswith("sid=cookie-1;")
    assert "Max-Age=600" in response.headers["Set-Cookie"]


async def test_the_automatic_layer_decides_once_and_serves_every_request(
    instrumented: SessionInstrumentor,
) -> None:
    app = fastapi_app()
    flask = flask_app()
    for session_id in ("again-1", "again-2"):
        asgi_response = await get(app, {SESSION_HEADER_NAME: session_id})
        wsgi_response = Client(flask).get("/session", headers={SESSION_HEADER_NAME: session_id})
        assert asgi_response.json()["id"] == session_id
        assert wsgi_response.json == {"id": session_id, "attributes": {"from": "environment"}}
