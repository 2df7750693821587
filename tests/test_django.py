"""The Django middleware in-process: Django's test clients and ASGI handler, on the test project.

The project in `tests/live/apps/django_project` is the one `tests/live/test_django.py` serves
under gunicorn and uvicorn. Django's settings are configured once for the test process; tests
change them only inside `override_settings`.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import sys
import threading
import uuid
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.urls import path
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ops_session import SESSION_HEADER_NAME, SessionContext, current_session, session
from ops_session._core import add_request_listener, remove_request_listener
from ops_session.django import SessionMiddleware, policy_from_settings
from ops_session.otel import SessionSpanProcessor

from .live.apps.django_project import logs, views
from .live.apps.django_project import settings as project_settings
from .support.django_settings import configure_django
from .support.hostile import hostile_text

configure_django()

SYNC_MIDDLEWARE = "tests.live.apps.django_project.middleware.SyncOnlyMiddleware"
OURS = "ops_session.django.SessionMiddleware"


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def client(**headers: str) -> Client:
    return Client(headers=headers, raise_request_exception=False)


def async_client(**headers: str) -> AsyncClient:
    return AsyncClient(headers=headers, raise_request_exception=False)


def header(**values: str) -> dict[str, str]:
    return {SESSION_HEADER_NAME: values["id"]}


recorded = views.recorded_for


# --- the session in sync and async views, under the sync and async handlers ---------------------


@pytest.mark.parametrize("path", ["/session", "/session-async"])
def test_sync_handler_valid_id_reaches_the_view_and_the_response(path: str) -> None:
    response = client().get(path, headers=header(id="chat-42"))
    assert response.status_code == 200
    assert response[SESSION_HEADER_NAME] == "chat-42"
    seen = response.json()
    assert seen["id"] == "chat-42"
    assert seen["request_header"] == "chat-42"
    assert seen["attributes"] == {"method": "GET", "path": path}
    assert seen["before"] is None
    assert response["X-Session-After"] == "none"  # reset before the response left
    assert current_session() is None


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/session", "/session-async"])
async def test_async_handler_valid_id_reaches_the_view_and_the_response(path: str) -> None:
    response = await async_client().get(path, headers=header(id="chat-43"))
    assert response[SESSION_HEADER_NAME] == "chat-43"
    seen = response.json()
    assert (seen["id"], seen["before"]) == ("chat-43", None)
    assert response["X-Session-After"] == "none"
    assert current_session() is None


@pytest.mark.parametrize("path", ["/sleep", "/sleep-async"])
def test_sync_handler_views_read_the_same_session_around_a_sleep(path: str) -> None:
    seen = client().get(path, headers=header(id="twice-1")).json()
    assert seen == {"first": "twice-1", "second": "twice-1"}


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/sleep", "/sleep-async"])
async def test_async_handler_views_read_the_same_session_around_a_sleep(path: str) -> None:
    seen = (await async_client().get(path, headers=header(id="twice-2"))).json()
    assert seen == {"first": "twice-2", "second": "twice-2"}


def test_generated_id_is_shown_in_request_headers_and_meta() -> None:
    seen_client = client()
    # An outer layer that read request.headers before us must see the effective id too.
    factory_request = RequestFactory().get("/session")
    assert factory_request.headers.get(SESSION_HEADER_NAME) is None
    middleware = SessionMiddleware(
        lambda request: HttpResponse(request.headers[SESSION_HEADER_NAME])
    )
    response = middleware(factory_request)
    assert isinstance(response, HttpResponse)
    assert response.content.decode() == response[SESSION_HEADER_NAME]
    seen = seen_client.get("/session").json()
    assert is_uuid4(seen["id"])
    assert seen["request_header"] == seen["meta"] == seen["id"]


@override_settings(OPS_SESSION={"update_request_header": False})
def test_generated_id_can_stay_out_of_the_request() -> None:
    response = client().get("/session", headers=header(id="bad id"))
    seen = response.json()
    assert is_uuid4(seen["id"]) and response[SESSION_HEADER_NAME] == seen["id"]
    assert seen["request_header"] == "bad id"


@pytest.mark.parametrize("value", hostile_text())
def test_hostile_id_is_replaced_and_never_echoed(value: str) -> None:
    response = client().get("/session", headers={SESSION_HEADER_NAME: value})
    assert response.status_code == 200
    seen = response.json()
    assert is_uuid4(seen["id"]) and response[SESSION_HEADER_NAME] == seen["id"]
    assert value not in response.headers.values()
    if value.strip():
        assert value not in response.content.decode("latin-1")


@override_settings(OPS_SESSION={"on_invalid": "reject"})
@pytest.mark.parametrize("value", hostile_text())
def test_reject_mode_answers_400_naming_the_header(value: str) -> None:
    response = client().get("/session", headers={SESSION_HEADER_NAME: value})
    assert response.status_code == 400
    assert response.content == b"Invalid Mirascope-Session-Id header.\n"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert not response.has_header(SESSION_HEADER_NAME)
    assert client().get("/session", headers=header(id="fine-1")).json()["id"] == "fine-1"


@pytest.mark.anyio
@override_settings(OPS_SESSION={"on_invalid": "reject"})
async def test_reject_mode_under_the_async_handler() -> None:
    response = await async_client().get("/session-async", headers=header(id="a,b"))
    assert response.status_code == 400
    assert b"a,b" not in response.content


def test_view_chosen_header_stands() -> None:
    response = client().get("/own-header", headers=header(id="incoming"))
    assert [
        value for name, value in response.items() if name.lower() == "mirascope-session-id"
    ] == ["app-chosen"]


def test_nested_session_in_a_view() -> None:
    seen = client().get("/nested", headers=header(id="outer-1")).json()
    assert seen == {"outer": "outer-1", "inner": "nested-inner", "after": "outer-1"}


def test_outer_session_is_restored_after_a_request() -> None:
    with session(id="outer") as outer:
        response = client().get("/session", headers=header(id="inner"))
        assert response.json()["before"] == "outer"
        assert current_session() is outer


# --- settings --------------------------------------------------------------------------------


def always(request: HttpRequest) -> dict[str, Any]:
    return {"user": request.GET.get("user", "anon")}


def alphanumeric(value: str) -> bool:
    return value.isalnum()


def make_ulid_like() -> str:
    return "01HZX" + uuid.uuid4().hex[:21].upper()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"attributes": {"app": "shop"}}, {"app": "shop"}, id="mapping"),
        pytest.param({"attributes": always}, {"user": "ada"}, id="callable"),
        pytest.param({"attributes": f"{__name__}.always"}, {"user": "ada"}, id="dotted-path"),
        pytest.param({}, {}, id="none"),
    ],
)
def test_attributes_setting(options: dict[str, Any], expected: Any) -> None:
    with override_settings(OPS_SESSION=options):
        seen = client().get("/session", {"user": "ada"}).json()
    assert seen["attributes"] == expected


@pytest.mark.parametrize("configured", [None, {}], ids=["unset", "empty"])
def test_defaults_match_the_other_middlewares(configured: Any) -> None:
    with override_settings(OPS_SESSION=configured):
        policy = policy_from_settings()
    assert policy.header_name == SESSION_HEADER_NAME
    assert not policy.reject_invalid and policy.update_request_header
    assert policy.attributes is None


def test_custom_header_generator_and_validator_by_dotted_path() -> None:
    options = {
        "header_name": "X-Conversation",
        "generator": f"{__name__}.make_ulid_like",
        "validator": f"{__name__}.alphanumeric",
    }
    with override_settings(OPS_SESSION=options):
        response = client().get("/session", headers={"X-Conversation": "abc123"})
        assert response["X-Conversation"] == "abc123"
        generated = client().get("/session", headers={"X-Conversation": "a-b"})["X-Conversation"]
    assert generated.startswith("01HZX") and len(generated) == 26


def generates_bad_ids() -> str:
    return "not valid"


@pytest.mark.parametrize(
    ("configured", "named"),
    [
        pytest.param(["on_invalid"], "OPS_SESSION must be a dict", id="not-a-dict"),
        pytest.param({"on_invalide": "reject"}, "'on_invalide': did you mean", id="typo"),
        pytest.param({"colour": 1}, "no option 'colour'", id="unknown"),
        pytest.param({"header_name": "a b"}, "header_name", id="header-name"),
        pytest.param({"generator": 42}, "generator", id="generator"),
        pytest.param(
            {"generator": "no.such.module"},
            "generator must be a callable or its dotted path",
            id="generator-path",
        ),
        pytest.param({"generator": f"{__name__}.generates_bad_ids"}, "generator", id="gen-bad"),
        pytest.param(
            {"validator": "nowhere"},
            "validator must be a callable or its dotted path",
            id="validator-path",
        ),
        pytest.param({"on_invalid": "drop"}, "on_invalid", id="on-invalid"),
        pytest.param({"attributes": 3}, "attributes", id="attributes"),
        pytest.param(
            {"attributes": "tests.nothing"},
            "attributes must be a callable or its dotted path",
            id="attributes-path",
        ),
        pytest.param({"update_request_header": "yes"}, "update_request_header", id="update"),
    ],
)
def test_bad_settings_raise_improperly_configured_naming_the_key(
    configured: Any, named: str
) -> None:
    with override_settings(OPS_SESSION=configured), pytest.raises(ImproperlyConfigured) as raised:
        Client().get("/session")
    assert "OPS_SESSION" in str(raised.value)
    assert named in str(raised.value)


def test_missing_django_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "django.conf", None)
    monkeypatch.delitem(sys.modules, "ops_session.django")
    with pytest.raises(ImportError, match=r"install 'ops-session\[django\]'"):
        importlib.import_module("ops_session.django")


# --- sync and async capable, without thread hops ---------------------------------------------


def test_middleware_runs_in_the_mode_of_the_chain_below() -> None:
    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert SessionMiddleware.sync_capable and SessionMiddleware.async_capable
    assert iscoroutinefunction(SessionMiddleware(async_view))
    assert not iscoroutinefunction(SessionMiddleware(lambda request: HttpResponse()))


@pytest.mark.anyio
async def test_async_view_runs_in_the_event_loop_thread() -> None:
    seen = (await async_client().get("/session-async")).json()
    assert seen["thread"] == threading.get_ident()


@pytest.mark.anyio
@override_settings(MIDDLEWARE=[*project_settings.MIDDLEWARE, SYNC_MIDDLEWARE])
@pytest.mark.parametrize("path", ["/session", "/session-async", "/stream", "/error"])
async def test_sync_only_middleware_below_ours_under_asgi(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    for number in range(3):
        response = await async_client().get(path, headers=header(id=f"mixin-{number}"))
        assert response[SESSION_HEADER_NAME] == f"mixin-{number}"
        assert response["X-Sync-Middleware-Saw"] == f"mixin-{number}"
        assert response["X-Session-After"] == "none"
        if path.startswith("/session"):
            assert response.json()["sync_middleware"] == f"mixin-{number}"
    assert "different Context" not in caplog.text


def test_request_listeners_run_inside_the_session() -> None:
    seen: list[tuple[str, str | None]] = []

    def listener(context: SessionContext) -> None:
        current = current_session()
        seen.append((context.id, current.id if current else None))

    add_request_listener(listener)
    try:
        client().get("/session", headers=header(id="listened-1"))
        asyncio.run(async_client().get("/session", headers=header(id="listened-2")))
    finally:
        remove_request_listener(listener)
    assert seen == [("listened-1", "listened-1"), ("listened-2", "listened-2")]


# --- streamed bodies -----------------------------------------------------------------------


def sync_chunks(response: object) -> Iterator[bytes]:
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    assert isinstance(content, Iterator)
    return content


def async_chunks(response: object) -> AsyncGenerator[bytes]:
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    assert isinstance(content, AsyncGenerator)
    return content


def test_sync_streamed_body_runs_in_the_session() -> None:
    key = uuid.uuid4().hex
    response = client().get("/stream", {"key": key}, headers=header(id="st-1"))
    assert response[SESSION_HEADER_NAME] == "st-1"
    assert current_session() is None
    assert b"".join(response).decode().splitlines() == ["st-1"] * 5
    assert recorded(key) == {"done": True, "id": "st-1"}


def test_sync_streamed_body_closed_early_closes_in_the_session() -> None:
    key = uuid.uuid4().hex
    response = client().get("/stream", {"key": key, "count": "50"}, headers=header(id="st-2"))
    assert isinstance(response, StreamingHttpResponse)
    assert next(sync_chunks(response)) == b"st-2\n"
    assert recorded(key)["done"] is False
    response.close()  # what the server does when the client goes away
    assert recorded(key) == {"done": True, "id": "st-2"}


@pytest.mark.anyio
async def test_async_streamed_body_runs_in_the_session() -> None:
    key = uuid.uuid4().hex
    response = await async_client().get("/stream-async", {"key": key}, headers=header(id="st-3"))
    assert current_session() is None
    lines = [chunk async for chunk in async_chunks(response)]
    assert b"".join(lines).decode().splitlines() == ["st-3"] * 5
    assert current_session() is None
    assert recorded(key) == {"done": True, "id": "st-3"}


def test_async_streamed_body_under_the_sync_handler() -> None:
    response = client().get("/stream-async", headers=header(id="st-4"))
    with pytest.warns(Warning, match="must consume asynchronous iterators"):
        body = b"".join(response)
    assert body.decode().splitlines() == ["st-4"] * 5


@pytest.mark.anyio
async def test_async_streamed_body_stopped_early_leaves_nothing_behind() -> None:
    response = await async_client().get("/stream-async", {"count": "50"}, headers=header(id="e"))
    chunks = async_chunks(response)
    assert await anext(chunks) == b"e\n"
    assert current_session() is None
    await chunks.aclose()
    assert current_session() is None


def test_file_response_keeps_its_file() -> None:
    middleware = SessionMiddleware(lambda request: FileResponse(io.BytesIO(b"file body")))
    response = middleware(RequestFactory().get("/file"))
    assert isinstance(response, FileResponse)
    assert response.file_to_stream is not None  # still served by wsgi.file_wrapper/sendfile
    assert b"".join(response) == b"file body"


# --- Django's ASGI handler, as uvicorn runs it ---------------------------------------------------


def asgi_scope(path: str, query: bytes = b"", *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def asgi_get(path: str, query: bytes, session_id: bytes) -> tuple[dict[str, Any], bytes]:
    scope = asgi_scope(path, query, (b"mirascope-session-id", session_id))
    communicator = ApplicationCommunicator(get_asgi_application(), scope)  # type: ignore[no-untyped-call]
    await communicator.send_input({"type": "http.request"})  # type: ignore[no-untyped-call]
    start = await communicator.receive_output(5)  # type: ignore[no-untyped-call]
    body = b""
    while True:
        message = await communicator.receive_output(5)  # type: ignore[no-untyped-call]
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(5)  # type: ignore[no-untyped-call]
    return start, body


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/stream", "/stream-async"])
async def test_streamed_bodies_under_the_asgi_handler(path: str) -> None:
    key = uuid.uuid4().hex
    if path == "/stream":
        with pytest.warns(Warning, match="must consume synchronous iterators"):
            start, body = await asgi_get(path, f"key={key}".encode(), b"asgi-st")
    else:
        start, body = await asgi_get(path, f"key={key}".encode(), b"asgi-st")
    assert (b"Mirascope-Session-Id", b"asgi-st") in start["headers"]
    assert body.decode().splitlines() == ["asgi-st"] * 5
    assert recorded(key) == {"done": True, "id": "asgi-st"}
    assert current_session() is None


@pytest.mark.anyio
async def test_client_disconnect_cancels_the_view_inside_its_session() -> None:
    key = uuid.uuid4().hex
    scope = asgi_scope("/slow", f"key={key}".encode(), (b"mirascope-session-id", b"gone-1"))
    communicator = ApplicationCommunicator(get_asgi_application(), scope)  # type: ignore[no-untyped-call]
    await communicator.send_input({"type": "http.request"})  # type: ignore[no-untyped-call]
    await asyncio.sleep(0.2)
    await communicator.send_input({"type": "http.disconnect"})  # type: ignore[no-untyped-call]
    await communicator.wait(5)  # type: ignore[no-untyped-call]
    assert recorded(key) == {"done": True, "id": "gone-1"}
    assert current_session() is None


@pytest.mark.anyio
async def test_cancelled_request_restores_the_task_session() -> None:
    started = asyncio.Event()

    async def view(request: HttpRequest) -> HttpResponse:
        started.set()
        await asyncio.sleep(30)
        return HttpResponse()  # pragma: no cover - cancelled before

    middleware = SessionMiddleware(view)
    request = RequestFactory().get("/", headers=header(id="cancelled-1"))
    with session(id="task-own") as own:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_later(0.1, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await middleware(request)  # type: ignore[misc]
        task.uncancel()
        assert started.is_set()
        assert current_session() is own


# --- errors and logging ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/error", "/error-async"])
def test_500_page_carries_the_header_and_logs_in_the_session(path: str) -> None:
    before = len(logs.lines())
    response = client().get(path, headers=header(id="err-1"))
    assert response.status_code == 500
    assert response[SESSION_HEADER_NAME] == "err-1"
    assert b"Server Error (500)" in response.content
    async_response = asyncio.run(async_client().get(path, headers=header(id="err-2")))
    assert async_response.status_code == 500
    assert async_response[SESSION_HEADER_NAME] == "err-2"
    errors = [line.splitlines()[0] for line in logs.lines()[before:] if "django.request" in line]
    assert errors == [
        f"session=err-1 django.request: Internal Server Error: {path}",
        f"session=err-2 django.request: Internal Server Error: {path}",
    ]
    later = client().get("/session").json()
    assert later["before"] is None and later["id"] not in ("err-1", "err-2")


def test_log_filter_in_logging_setting_stamps_view_records() -> None:
    seen = client().get("/log", {"marker": "m-1"}, headers=header(id="log-1")).json()
    assert seen["lines"] == ["session=log-1 views: view ran m-1"]


# --- OpenTelemetry's Django instrumentation --------------------------------------------------


_tracing: dict[str, Any] = {}


def traced(request: HttpRequest) -> HttpResponse:
    with _tracing["tracer"].start_as_current_span("view work"):
        return HttpResponse("traced")


urlpatterns = [path("traced", traced)]
"""The routes of the OpenTelemetry tests, which set `ROOT_URLCONF` to this module."""


def spans_of_one_request(*, ours_outside: bool = False) -> dict[str, Any]:
    """The spans of one request through DjangoInstrumentor's middleware and ours, by kind."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracing["tracer"] = provider.get_tracer(__name__)
    instrumentor = DjangoInstrumentor()
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[OURS]):
        instrumentor.instrument(tracer_provider=provider)  # puts its middleware first
        try:
            assert settings.MIDDLEWARE[1] == OURS
            if ours_outside:
                settings.MIDDLEWARE.insert(0, settings.MIDDLEWARE.pop(1))
            response = Client().get("/traced", headers=header(id="otel-1"))
        finally:
            instrumentor.uninstrument()
            provider.shutdown()  # unregisters the processor's request listener
    assert response[SESSION_HEADER_NAME] == "otel-1"
    return {str(span.kind): span for span in exporter.get_finished_spans()}


def test_the_server_span_opened_before_the_session_carries_it() -> None:
    spans = spans_of_one_request()
    # DjangoInstrumentor's middleware is above ours: the processor stamps its span once the
    # session starts.
    assert spans["SpanKind.SERVER"].attributes["session.id"] == "otel-1"
    assert spans["SpanKind.INTERNAL"].attributes["session.id"] == "otel-1"
    assert spans["SpanKind.INTERNAL"].parent.span_id == spans["SpanKind.SERVER"].context.span_id


def test_server_span_carries_the_session_when_ours_runs_first() -> None:
    spans = spans_of_one_request(ours_outside=True)
    assert spans["SpanKind.SERVER"].attributes["session.id"] == "otel-1"
    assert spans["SpanKind.INTERNAL"].attributes["session.id"] == "otel-1"


# --- the browser options, with the ASGI and WSGI middlewares' meaning ------------------------

BROWSER: dict[str, Any] = {
    "attributes": project_settings.OPS_SESSION["attributes"],
    "also_accept": ["X-Legacy-Id"],
    "query_param": "session_id",
    "cookie": "sid",
    "set_cookie": True,
    "cookie_max_age": 600,
}


@pytest.mark.parametrize("path", ["/session", "/session-async"])
def test_the_id_comes_from_the_other_places_as_in_the_middlewares(path: str) -> None:
    with override_settings(OPS_SESSION=BROWSER):
        from_cookie = Client(HTTP_COOKIE="sid=cookie-1").get(path)
        from_legacy = client(**{"X-Legacy-Id": "legacy-1"}).get(path)
        from_query = client().get(path + "?session_id=query-1")
        cookie_over_query = Client(HTTP_COOKIE="sid=cookie-2").get(path + "?session_id=q-2")
    assert from_cookie.json()["id"] == from_cookie[SESSION_HEADER_NAME] == "cookie-1"
    assert from_legacy.json()["id"] == "legacy-1"
    assert from_query.json()["id"] == "query-1"
    assert cookie_over_query.json()["id"] == "cookie-2"
    morsel = from_cookie.cookies["sid"]
    assert (morsel.value, morsel["max-age"], morsel["path"]) == ("cookie-1", "600", "/")
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and not morsel["secure"]
    assert from_cookie["Cache-Control"] == "private" and from_cookie["Vary"] == "Cookie"
    assert "sid" not in from_query.cookies  # a link's id is never persisted


def test_the_cookie_is_secure_when_django_sees_https() -> None:
    with override_settings(OPS_SESSION=BROWSER):
        response = client().get("/session", secure=True)
    assert response.cookies["sid"]["secure"]


def test_the_views_own_session_cookie_wins() -> None:
    def rotate(request: HttpRequest) -> HttpResponse:
        response = HttpResponse("rotated")
        response.set_cookie("sid", "rotated-1")
        return response

    request = RequestFactory().get("/", HTTP_COOKIE="sid=old-1")
    with override_settings(OPS_SESSION=BROWSER):
        response = SessionMiddleware(rotate)(request)
    assert response.cookies["sid"].value == "rotated-1"  # type: ignore[union-attr]


def test_reject_mode_clears_a_stale_invalid_cookie() -> None:
    with override_settings(OPS_SESSION={**BROWSER, "on_invalid": "reject"}):
        response = Client(HTTP_COOKIE="sid=<stale>").get("/session")
        kept = Client(HTTP_COOKIE="sid=ok-1").get("/session", headers=header(id="a b"))
    assert response.status_code == 400
    assert response.cookies["sid"].value == "" and response.cookies["sid"]["max-age"] == "0"
    assert kept.status_code == 400 and "sid" not in kept.cookies


def test_manage_py_check_flags_a_misspelt_key() -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with override_settings(OPS_SESSION={"on_invalide": "reject"}):
        with pytest.raises(SystemCheckError, match=r"ops_session.E001.*did you mean 'on_invalid'"):
            call_command("check")
    with override_settings(OPS_SESSION={"on_invalid": "reject"}):
        call_command("check")


def test_the_app_config_registers_the_check() -> None:
    from django.apps import apps
    from django.core import checks

    from ops_session.django import OpsSessionConfig, check_settings

    config = OpsSessionConfig.create("ops_session.django.OpsSessionConfig")
    assert (config.name, config.label) == ("ops_session", "ops_session")
    config.ready()
    assert check_settings in checks.registry.registry.registered_checks
    assert apps.ready
