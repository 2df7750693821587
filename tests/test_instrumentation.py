from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import flask
import httpx
import pytest
import requests
import rq.queue
import rq.worker
from celery import Celery
from fastapi import FastAPI
from opentelemetry.propagators.textmap import Setter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from starlette.applications import Starlette
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client

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
from ops_session.instrumentation import DJANGO_MIDDLEWARE, SessionInstrumentor
from ops_session.otel import SessionPropagator, SessionSpanProcessor
from ops_session.rq import SessionJob

from .support.django_settings import configure_django

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


@pytest.mark.parametrize(
    ("carrier", "sent"),
    [
        pytest.param({"host": "api.internal"}, True, id="allowed"),
        pytest.param({"Host": "api.internal:8443"}, True, id="allowed-with-port"),
        pytest.param({"host": "[::1]:8000"}, True, id="ipv6-with-port"),
        pytest.param({"host": "llm.example.com"}, False, id="other-host"),
        pytest.param({}, False, id="no-host"),
    ],
)
def test_the_propagator_keeps_to_the_allow_list(carrier: dict[str, str], sent: bool) -> None:
    set_outgoing_hosts(["api.internal", "::1"])
    try:
        with session(id="zero-4"):
            SessionPropagator().inject(carrier)
    finally:
        set_outgoing_hosts(None)
    assert (carrier.get(SESSION_HEADER_NAME) == "zero-4") is sent


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


def test_a_carrier_that_is_no_mapping_gets_nothing_under_an_allow_list() -> None:
    carrier: list[tuple[str, str]] = []
    set_outgoing_hosts(["api.internal"])
    try:
        with session(id="zero-5"):
            SessionPropagator().inject(carrier, setter=ListSetter())
    finally:
        set_outgoing_hosts(None)
    assert carrier == []


class ListSetter(Setter[list[tuple[str, str]]]):
    def set(self, carrier: list[tuple[str, str]], key: str, value: str) -> None:
        carrier.append((key, value))  # pragma: no cover (never reached: nothing is sent)
