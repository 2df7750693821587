"""ops-session and the real `mirascope.ops` see one current session, whichever opened it.

These run against `mirascope[ops]` from the package index, with the Anthropic and Google packages
whose absence would turn `mirascope.ops` into a stub. Mirascope's own spans need OpenTelemetry's
global tracer provider, so they are checked in a child process (`support/mirascope_spans.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from mirascope import ops
from mirascope.ops._internal import session as mirascope_session
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from werkzeug.test import Client

import ops_session
from ops_session import (
    SESSION_HEADER_NAME,
    SessionContext,
    SessionMiddleware,
    WSGISessionMiddleware,
    continue_session,
    current_session,
    inject_session,
    require_session,
    session,
)
from ops_session._mirascope import MirascopeSessions
from ops_session.celery import propagate_sessions
from ops_session.django import SessionMiddleware as DjangoSessionMiddleware
from ops_session.otel import SessionPropagator

from .support.django_settings import configure_django

Seen = tuple[str | None, str | None]
"""The id ops-session reports, and the id Mirascope reports, at one point of a request."""


def seen_now() -> Seen:
    ours, theirs = current_session(), ops.current_session()
    return (ours.id if ours else None, theirs.id if theirs else None)


def test_mirascope_ops_is_the_real_package_and_reads_our_variable() -> None:
    assert ops.session.__module__ == "mirascope.ops._internal.session"
    assert isinstance(mirascope_session.SESSION_CONTEXT, MirascopeSessions)


def test_mirascope_sees_a_session_that_ops_session_opened() -> None:
    with session(id="chat-42", attributes={"user": "ada", "turns": [1, 2]}) as ours:
        theirs = ops.current_session()
        assert isinstance(theirs, ops.SessionContext)
        assert (theirs.id, theirs.attributes) == ("chat-42", {"user": "ada", "turns": [1, 2]})
        assert ops.current_session() is theirs, "one view per session, not one per read"
        assert current_session() is ours
    assert ops.current_session() is None


def test_ops_session_sees_a_session_that_mirascope_opened() -> None:
    with ops.session(id="script-7", attributes={"job": "nightly"}) as theirs:
        assert current_session() == SessionContext("script-7", {"job": "nightly"})
        assert require_session().id == "script-7"
        assert inject_session({}) == {SESSION_HEADER_NAME: "script-7"}
        assert ops.current_session() is theirs, "Mirascope gets back the object it yielded"
    assert current_session() is None


def test_a_generated_mirascope_id_is_shared_too() -> None:
    with ops.session() as theirs:
        assert require_session().id == theirs.id


Opener = Callable[[str], AbstractContextManager[Any]]
OPENERS: dict[str, Opener] = {
    "ops_session": lambda session_id: session(id=session_id),
    "mirascope": lambda session_id: ops.session(id=session_id),
    "mirascope-propagated": lambda session_id: ops.propagated_context(
        extract_from={"mirascope-session-id": session_id}
    ),
    "continue_session": lambda session_id: continue_session({SESSION_HEADER_NAME: session_id}),
}


@pytest.mark.parametrize("inner", OPENERS)
@pytest.mark.parametrize("outer", OPENERS)
def test_nesting_in_either_order_shows_the_innermost_and_restores_the_outer(
    outer: str, inner: str
) -> None:
    with OPENERS[outer]("outer-1"):
        assert seen_now() == ("outer-1", "outer-1")
        with OPENERS[inner]("inner-2"):
            assert seen_now() == ("inner-2", "inner-2")
        assert seen_now() == ("outer-1", "outer-1")
    assert seen_now() == (None, None)


@pytest.mark.parametrize("inner", OPENERS)
@pytest.mark.parametrize("outer", OPENERS)
def test_an_exception_restores_the_outer_session(outer: str, inner: str) -> None:
    with OPENERS[outer]("outer-1"):
        with pytest.raises(RuntimeError, match="boom"), OPENERS[inner]("inner-2"):
            raise RuntimeError("boom")
        assert seen_now() == ("outer-1", "outer-1")
    assert seen_now() == (None, None)


def test_threads_with_a_copied_context_and_tasks_see_a_mirascope_session() -> None:
    seen: list[Seen] = []

    async def in_task() -> None:
        seen.append(seen_now())

    with ops.session(id="shared-1"):
        thread = threading.Thread(target=contextvars.copy_context().run, args=(seen_now,))
        thread.start()
        thread.join()
        with ThreadPoolExecutor(max_workers=1) as pool:
            seen.append(pool.submit(contextvars.copy_context().run, seen_now).result())
        asyncio.run(in_task())
    assert seen == [("shared-1", "shared-1")] * 2


def test_a_reused_worker_thread_keeps_nothing_from_a_mirascope_block() -> None:
    def in_a_block() -> Seen:
        with ops.session(id="job-1"):
            return seen_now()

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(in_a_block).result() == ("job-1", "job-1")
        assert pool.submit(seen_now).result() == (None, None)


@pytest.mark.anyio
async def test_a_reused_task_context_keeps_nothing_from_a_mirascope_block() -> None:
    async def in_a_block(session_id: str) -> Seen:
        with ops.session(id=session_id):
            await asyncio.sleep(0)
            return seen_now()

    results = await asyncio.gather(*(in_a_block(f"task-{n}") for n in range(20)))
    assert results == [(f"task-{n}", f"task-{n}") for n in range(20)]
    assert seen_now() == (None, None)


# Every server-side entry point of ops-session, each answering with what its handler saw.


def asgi_app() -> Starlette:
    async def chat(request: Request) -> StreamingResponse:
        seen = [seen_now()]

        async def body() -> AsyncIterator[bytes]:
            await asyncio.sleep(0)
            seen.append(seen_now())
            yield json.dumps(seen).encode()

        return StreamingResponse(body())

    def sync_chat(request: Request) -> JSONResponse:  # Starlette runs it in a worker thread
        return JSONResponse([seen_now()] * 2)

    return Starlette(routes=[Route("/chat", chat), Route("/sync", sync_chat)])


@pytest.mark.anyio
async def test_asgi_middleware_sessions_reach_mirascope_in_sync_async_and_streamed_bodies() -> None:
    app = asgi_app()
    app.add_middleware(SessionMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = await asyncio.gather(
            *(
                client.get(path, headers={SESSION_HEADER_NAME: f"chat-{n}"})
                for n, path in enumerate(["/chat", "/sync"] * 5)
            )
        )
    for n, answer in enumerate(answers):
        assert answer.json() == [[f"chat-{n}", f"chat-{n}"]] * 2
    assert seen_now() == (None, None)


def test_wsgi_middleware_sessions_reach_mirascope_in_handler_and_streamed_body() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        yield json.dumps(seen_now()).encode()
        yield b"|" + json.dumps(seen_now()).encode()

    client = Client(WSGISessionMiddleware(app))
    answer = client.get("/", headers={SESSION_HEADER_NAME: "flask-3"})
    assert answer.get_data(as_text=True) == '["flask-3", "flask-3"]|["flask-3", "flask-3"]'
    assert seen_now() == (None, None)


def test_django_middleware_sessions_reach_mirascope() -> None:
    configure_django()
    seen: list[Seen] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(seen_now())
        return HttpResponse("ok")

    request = RequestFactory().get("/", HTTP_MIRASCOPE_SESSION_ID="django-4")
    DjangoSessionMiddleware(view)(request)
    assert seen == [("django-4", "django-4")]
    assert seen_now() == (None, None)


def test_celery_worker_sessions_reach_mirascope() -> None:
    app = Celery("mirascope", broker="memory://", set_as_current=False)
    propagate_sessions(app)
    seen: list[Seen] = []

    @app.task
    def summarize() -> None:
        seen.append(seen_now())

    summarize.push_request(id="task-1", is_eager=False, **{SESSION_HEADER_NAME: "celery-5"})
    try:
        task_prerun.send(sender=summarize, task_id="task-1", task=summarize, args=(), kwargs={})
        summarize.run()
        task_postrun.send(sender=summarize, task_id="task-1", task=summarize, args=(), kwargs={})
    finally:
        summarize.pop_request()
    assert seen == [("celery-5", "celery-5")]
    assert seen_now() == (None, None)


def test_mirascope_inject_context_writes_the_request_id_once() -> None:
    carriers: list[dict[str, str]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        carrier: dict[str, str] = {}
        ops.inject_context(carrier)
        carriers.append(carrier)
        start_response("200 OK", [])
        return [b""]

    Client(WSGISessionMiddleware(app)).get("/", headers={SESSION_HEADER_NAME: "chat-42"})
    [carrier] = carriers
    assert [value for name, value in carrier.items() if name.lower() == "mirascope-session-id"] == [
        "chat-42"
    ]


REFUSED_IDS = [
    pytest.param("user 42", id="space"),
    pytest.param("chat-1\r\nSet-Cookie: sid=x", id="crlf"),
    pytest.param("chat-\u00fc", id="non-ascii"),
    pytest.param("a" * 1025, id="1025-chars"),
]


@pytest.mark.parametrize("refused", REFUSED_IDS)
@pytest.mark.parametrize("opener", ["mirascope", "mirascope-propagated"])
def test_an_id_ops_session_refuses_never_reaches_a_header(
    opener: str, refused: str, caplog: pytest.LogCaptureFixture
) -> None:
    with session(id="outer-1"), OPENERS[opener](refused):
        assert seen_now() == (None, None)
        carrier: dict[str, str] = {}
        ops.inject_context(carrier)
        assert carrier == {} and inject_session({}) == {}
    assert all(refused not in record.getMessage() for record in caplog.records)


def test_an_empty_mirascope_id_opens_no_shared_session() -> None:
    with session(id="outer-1"):
        with ops.session(id=""):
            assert seen_now() == (None, None)
        with ops.propagated_context(extract_from={"mirascope-session-id": ""}):
            assert seen_now() == ("outer-1", "outer-1"), "empty is absent, as for a header"


def test_a_refused_id_is_told_once_then_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    ops_session._mirascope._warned.discard("id")
    caplog.set_level(logging.DEBUG, logger="ops_session._mirascope")
    for _ in range(3):
        with ops.session(id="has a space"):
            pass
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "cannot travel in a header" in caplog.records[0].getMessage()


def test_attributes_that_are_not_json_share_the_id_alone(caplog: pytest.LogCaptureFixture) -> None:
    ops_session._mirascope._warned.discard("attributes")
    when = datetime.datetime(2026, 1, 1)
    with ops.session(id="dated-1", attributes={"when": when}) as theirs:  # type: ignore[dict-item]
        assert current_session() == SessionContext("dated-1")
        assert ops.current_session() is theirs
    assert "not JSON-compatible" in caplog.text


def test_a_mirascope_session_opened_before_the_variable_was_shared_still_resets() -> None:
    original: contextvars.ContextVar[Any] = contextvars.ContextVar("before", default=None)
    shared = MirascopeSessions(original, ops.SessionContext)
    token = original.set(ops.SessionContext(id="early-1"))
    shared.reset(token)
    assert original.get() is None


# Mirascope's propagator replaces OpenTelemetry's global one on first use.


@pytest.fixture
def global_propagator() -> Iterator[Callable[[Iterable[Any]], None]]:
    """Set the global propagator as OTEL_PROPAGATORS would; restore it and Mirascope's after."""
    before = propagate.get_global_textmap()

    def configure(propagators: Iterable[Any]) -> None:
        propagate.set_global_textmap(CompositePropagator(list(propagators)))
        ops.reset_propagator()

    yield configure
    propagate.set_global_textmap(before)
    ops.reset_propagator()


def test_mirascope_replacing_the_global_propagator_keeps_ops_session_and_baggage(
    global_propagator: Callable[[Iterable[Any]], None], echo_url: str
) -> None:
    global_propagator(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator(), SessionPropagator()]
    )
    carrier: dict[str, str] = {}
    ops.inject_context(carrier)  # Mirascope builds its propagator and sets it as the global
    assert propagate.get_global_textmap() is not None
    assert {"traceparent", "baggage", SESSION_HEADER_NAME} <= propagate.get_global_textmap().fields
    with httpx.Client() as client, session(id="chat-42"):
        HTTPXClientInstrumentor().instrument_client(client)
        assert client.get(echo_url).text == "chat-42"


def test_mirascope_replacing_a_global_propagator_without_ours_is_left_alone(
    global_propagator: Callable[[Iterable[Any]], None],
) -> None:
    global_propagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    ops.inject_context({})
    assert propagate.get_global_textmap().fields == {"traceparent", "tracestate"}


# Mirascope's spans, in a child process of its own global tracer provider.

SPANS_SCRIPT = Path(__file__).parent / "support" / "mirascope_spans.py"


def spans_in_child(scenario: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, str(SPANS_SCRIPT), scenario],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    spans: list[dict[str, Any]] = json.loads(result.stdout)
    return spans


def test_mirascope_trace_and_span_stamp_a_session_that_ops_session_opened() -> None:
    spans = spans_in_child("ops-session-opens")
    assert {span["name"] for span in spans} == {"answer", "lookup"}
    for span in spans:
        assert span["attributes"]["mirascope.ops.session.id"] == "chat-42"
        assert json.loads(span["attributes"]["mirascope.ops.session.attributes"]) == {"user": "ada"}
        assert "session.id" not in span["attributes"], "no ops-session processor in this run"


def test_session_span_processor_stamps_spans_in_a_mirascope_session() -> None:
    spans = spans_in_child("mirascope-opens")
    assert {span["name"] for span in spans} == {"answer", "lookup"}
    for span in spans:
        assert span["attributes"]["session.id"] == "script-7"
        assert span["attributes"]["mirascope.ops.session.id"] == "script-7"


def test_importing_ops_session_imports_no_mirascope() -> None:
    code = (
        "import sys, ops_session; assert not [m for m in sys.modules if m.startswith('mirascope')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "first", ["ops_session", "mirascope.ops"], ids=["ops-session-first", "mirascope-first"]
)
def test_either_import_order_shares_the_session(first: str) -> None:
    code = (
        f"import {first}\n"
        "import ops_session\n"
        "from mirascope import ops\n"
        "with ops.session(id='m-1'):\n"
        "    assert ops_session.current_session().id == 'm-1'\n"
        "with ops_session.session(id='o-1'):\n"
        "    assert ops.current_session().id == 'o-1'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_sharing_again_changes_nothing() -> None:
    shared = mirascope_session.SESSION_CONTEXT
    propagator_init = ops.ContextPropagator.__init__
    ops_session._mirascope.share_sessions_with_mirascope()
    assert mirascope_session.SESSION_CONTEXT is shared
    assert ops.ContextPropagator.__init__ is propagator_init


def test_a_mirascope_propagator_that_sets_no_global_changes_nothing(
    global_propagator: Callable[[Iterable[Any]], None],
) -> None:
    global_propagator([SessionPropagator()])
    before = propagate.get_global_textmap()
    ops.ContextPropagator(set_global=False)
    assert propagate.get_global_textmap() is before


# The import hook that waits for Mirascope, shown on a module of the test's own.


@pytest.fixture
def watched_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """A module `watched_by_ops_session` on sys.path, and a list to record its imports in."""
    (tmp_path / "watched_by_ops_session.py").write_text('"""Watched."""\nVALUE = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    imported: list[Any] = []
    yield imported
    sys.modules.pop("watched_by_ops_session", None)


def test_the_hook_runs_right_after_a_watched_import_and_keeps_the_loader(
    watched_module: list[Any],
) -> None:
    hook = ops_session._mirascope.AfterImport({"watched_by_ops_session": watched_module.append})
    hook.watch()
    hook.watch()
    try:
        assert sys.meta_path.count(hook) == 1
        assert watched_module == []
        import watched_by_ops_session  # type: ignore[import-not-found]

        assert watched_module == [watched_by_ops_session]
        loader = watched_by_ops_session.__spec__.loader
        assert "VALUE = 1" in loader.get_source("watched_by_ops_session")
        hook.watch()  # already imported: called at once
        assert watched_module == [watched_by_ops_session] * 2
    finally:
        sys.meta_path.remove(hook)


def test_the_hook_finds_nothing_that_no_other_finder_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = ops_session._mirascope.AfterImport({"no_such_module_anywhere": print})
    monkeypatch.setattr(sys, "meta_path", [hook, object(), *sys.meta_path])
    assert hook.find_spec("no_such_module_anywhere", None) is None
    assert hook.find_spec("json", None) is None, "an unwatched name is left to the others"


def test_the_hook_leaves_a_spec_without_a_loader_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    class NamespaceFinder:
        def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec:
            return ModuleSpec(fullname, None, is_package=True)

    hook = ops_session._mirascope.AfterImport({"a_namespace": print})
    monkeypatch.setattr(sys, "meta_path", [hook, NamespaceFinder()])
    spec = hook.find_spec("a_namespace", None)
    assert spec is not None and spec.loader is None


def test_the_propagator_named_by_the_variable_is_kept_in_a_fresh_process() -> None:
    """As configured in production: OTEL_PROPAGATORS loads ours, and nothing else imports it."""
    code = (
        "from mirascope import ops\n"
        "from opentelemetry import propagate\n"
        "ops.inject_context({})\n"
        "names = [type(p).__name__ for p in propagate.get_global_textmap()._propagators]\n"
        "assert 'SessionPropagator' in names and 'W3CBaggagePropagator' in names, names\n"
    )
    environment = {**os.environ, "OTEL_PROPAGATORS": "tracecontext,baggage,ops_session"}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=environment)
