from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import flask
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OpenTelemetryWSGI
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client
from whitenoise import WhiteNoise  # type: ignore[import-untyped]

from ops_session import (
    SESSION_HEADER_NAME,
    SessionContext,
    SessionMiddleware,
    WSGISessionMiddleware,
    current_session,
    install,
    require_session,
)

from .conftest import Tracing

pytestmark = pytest.mark.anyio

HEADERS = {SESSION_HEADER_NAME: "install-1"}
ORDERS = pytest.mark.parametrize(
    "instrument_first", [True, False], ids=["instrument-first", "install-first"]
)


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("unhandled on purpose")

    async def on_error(request: Request, exc: Exception) -> PlainTextResponse:
        current = current_session()
        return PlainTextResponse(f"error in {current.id if current else None}", status_code=500)

    app.add_exception_handler(Exception, on_error)
    return app


async def get(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, headers=headers)


def current_value() -> str:
    return "real"  # pragma: no cover (overridden)


async def read_with_dependencies(
    session: Annotated[SessionContext, Depends(require_session)],
    value: Annotated[str, Depends(current_value)],
) -> dict[str, str]:
    return {"id": session.id, "value": value}


async def test_fastapi_app_stays_itself_and_routes_added_later_run_in_the_session() -> None:
    app = fastapi_app()
    assert install(app) is app
    assert isinstance(app, FastAPI) and type(app).__name__ == "FastAPI"

    app.get("/session")(read_with_dependencies)
    app.dependency_overrides[current_value] = lambda: "overridden"
    response = await get(app, "/session", HEADERS)
    assert response.json() == {"id": "install-1", "value": "overridden"}
    assert response.headers[SESSION_HEADER_NAME] == "install-1"


async def test_fastapi_500_and_its_handler_run_in_the_session() -> None:
    app = install(fastapi_app())
    response = await get(app, "/fail", HEADERS)
    assert response.status_code == 500
    assert response.text == "error in install-1"
    assert response.headers.get_list(SESSION_HEADER_NAME) == ["install-1"]


async def test_unhandled_exception_names_its_session_in_the_traceback() -> None:
    app = FastAPI()

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("unhandled on purpose")

    install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(RuntimeError) as raised:
            await client.get("/fail", headers=HEADERS)
    assert raised.value.__notes__ == ["ops-session: raised in session install-1"]


@ORDERS
async def test_fastapi_instrumentor_server_span_runs_in_the_session(
    tracing: Tracing, instrument_first: bool
) -> None:
    app = fastapi_app()

    @app.get("/session")
    async def read() -> dict[str, str]:
        return {"id": require_session().id}

    if instrument_first:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider)
        install(app)
    else:
        install(app)
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider)
    try:
        assert (await get(app, "/session", HEADERS)).json() == {"id": "install-1"}
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    server_spans = [
        span for span in tracing.exporter.get_finished_spans() if span.kind == SpanKind.SERVER
    ]
    assert server_spans
    assert {(span.attributes or {}).get("session.id") for span in server_spans} == {"install-1"}


def flask_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/session")
    def read() -> dict[str, str]:
        return {"id": require_session().id}

    return app


def test_flask_app_stays_itself_and_wraps_everything_in_wsgi_app(tracing: Tracing) -> None:
    app = flask_app()
    assert install(app) is app
    assert isinstance(app, flask.Flask)
    # Middleware added after install still runs inside the session.
    app.wsgi_app = OpenTelemetryWSGI(  # type: ignore[method-assign]
        app.wsgi_app, tracer_provider=tracing.provider
    )
    response = Client(app).get("/session", headers=HEADERS)
    assert response.json == {"id": "install-1"}
    assert response.headers[SESSION_HEADER_NAME] == "install-1"
    (server_span,) = tracing.exporter.get_finished_spans()
    assert (server_span.attributes or {}).get("session.id") == "install-1"


def test_flask_unhandled_exception_names_its_session() -> None:
    app = flask.Flask(__name__)

    @app.get("/fail")
    def fail() -> str:
        raise RuntimeError("unhandled on purpose")

    app.config["PROPAGATE_EXCEPTIONS"] = True
    install(app)
    with pytest.raises(RuntimeError) as raised:
        Client(app).get("/fail", headers=HEADERS)
    assert raised.value.__notes__ == ["ops-session: raised in session install-1"]


def test_options_are_checked_at_once() -> None:
    with pytest.raises(RuntimeError, match="validator rejects"):
        install(FastAPI(), generator=lambda: "not valid")
    with pytest.raises(ValueError, match="on_invalid"):
        install(flask_app(), on_invalid="ignore")  # type: ignore[arg-type]


def test_installing_twice_or_beside_add_middleware_says_what_to_do() -> None:
    app = install(FastAPI())
    with pytest.raises(RuntimeError, match="already called"):
        install(app)
    with_layer = Starlette()
    with_layer.add_middleware(SessionMiddleware)
    with_layer.add_middleware(GZipMiddleware)
    with pytest.raises(RuntimeError, match="add_middleware"):
        install(with_layer)


def plain_wsgi(environ: Any, start_response: Any) -> Iterable[bytes]:
    raise AssertionError("never called")  # pragma: no cover


@pytest.mark.parametrize("app", [plain_wsgi, object()], ids=["wsgi-function", "object"])
def test_other_apps_are_refused_with_the_alternative(app: Any) -> None:
    with pytest.raises(TypeError, match="wrap any other ASGI or WSGI app"):
        install(app)


@ORDERS
def test_flask_instrumentor_server_span_runs_in_the_session(
    tracing: Tracing, instrument_first: bool
) -> None:
    app = flask_app()
    instrument = FlaskInstrumentor.instrument_app
    if instrument_first:
        instrument(app, tracer_provider=tracing.provider)  # type: ignore[no-untyped-call]
        install(app)
    else:
        install(app)
        instrument(app, tracer_provider=tracing.provider)  # type: ignore[no-untyped-call]
    try:
        assert Client(app).get("/session", headers=HEADERS).json == {"id": "install-1"}
    finally:
        FlaskInstrumentor.uninstrument_app(app)  # type: ignore[no-untyped-call]
    (server_span,) = [
        span for span in tracing.exporter.get_finished_spans() if span.kind == SpanKind.SERVER
    ]
    assert (server_span.attributes or {}).get("session.id") == "install-1"


@pytest.mark.parametrize("wrapper", ["ours", "whitenoise", "werkzeug"])
def test_installing_on_a_flask_app_that_wraps_its_own_layer_says_what_to_do(
    wrapper: str, tmp_path: Path
) -> None:
    app = flask_app()
    layer: Any = WSGISessionMiddleware(app.wsgi_app)
    if wrapper == "whitenoise":
        layer = WhiteNoise(layer, root=str(tmp_path))  # keeps it as `.application`
    elif wrapper == "werkzeug":
        layer = ProxyFix(layer)  # keeps it as `.app`
    app.wsgi_app = layer  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="already has WSGISessionMiddleware around its wsgi_app"):
        install(app)
    assert type(app) is flask.Flask  # left as it was


def test_a_subclass_of_our_middleware_counts_as_ours() -> None:
    class Mine(SessionMiddleware):
        pass

    app = Starlette()
    app.add_middleware(Mine)
    with pytest.raises(RuntimeError, match="add_middleware"):
        install(app)
