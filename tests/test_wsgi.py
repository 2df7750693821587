from __future__ import annotations

import contextvars
import gc
import io
import logging
import uuid
import wsgiref.util
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.validate import validator as wsgiref_validator

import flask
import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

from ops_session import SESSION_HEADER_NAME, SessionContext, current_session, session
from ops_session._core import (
    SHARED_EXCEPTION_NOTE,
    add_request_listener,
    note_session,
    remove_request_listener,
)
from ops_session.wsgi import SessionMiddleware

from .support.hostile import hostile_text
from .support.state import SESSION_HEADER_VALUES, snapshot
from .support.wsgi import RecordingStartResponse, run_wsgi, wsgi_environ

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from _typeshed import OptExcInfo

HOSTILE_IDS = hostile_text()


def session_id_text() -> str:
    current = current_session()
    return current.id if current else "none"


def plain_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{session_id_text()}|{environ.get('HTTP_MIRASCOPE_SESSION_ID')}".encode()]


class StreamedBody:
    """A lazy body that records the session seen by every step the server drives."""

    def __init__(self, chunks: int = 3, fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.seen: list[str] = []
        self.closed_in: list[str] = []

    def __iter__(self) -> Iterator[bytes]:
        for number in range(self.chunks):
            if number == self.fail_at:
                raise RuntimeError("body failed")
            self.seen.append(session_id_text())
            yield f"{number}:{session_id_text()};".encode()

    def close(self) -> None:
        self.closed_in.append(session_id_text())


def streaming_app(body: StreamedBody) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    return app


def test_valid_id_is_used_and_echoed() -> None:
    response = Client(SessionMiddleware(plain_app)).get(headers={SESSION_HEADER_NAME: "chat-1"})
    assert response.text == "chat-1|chat-1"
    assert response.headers.getlist(SESSION_HEADER_NAME) == ["chat-1"]


def test_missing_id_is_generated_and_written_into_the_environ() -> None:
    response = Client(SessionMiddleware(plain_app)).get()
    generated = response.headers[SESSION_HEADER_NAME]
    assert uuid.UUID(generated).version == 4
    assert response.text == f"{generated}|{generated}"


def test_update_request_header_false_leaves_the_environ_alone() -> None:
    response = Client(SessionMiddleware(plain_app, update_request_header=False)).get()
    generated = response.headers[SESSION_HEADER_NAME]
    assert response.text == f"{generated}|None"


@pytest.mark.parametrize("raw", HOSTILE_IDS)
def test_invalid_id_is_replaced_never_echoed_nor_logged(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ops_session")
    response, body = run_wsgi(SessionMiddleware(plain_app), wsgi_environ(session_id=raw))
    ((_, sent),) = [pair for pair in response.headers if pair[0] == SESSION_HEADER_NAME]
    assert uuid.UUID(sent).version == 4
    assert body.decode() == f"{sent}|{sent}"
    (record,) = caplog.records
    assert record.getMessage() == (
        f"Invalid Mirascope-Session-Id header ({len(raw)} characters): replaced by a generated id."
    )


def test_repeated_header_folded_by_the_server_gets_a_new_id() -> None:
    response = Client(SessionMiddleware(plain_app)).get(
        headers=[(SESSION_HEADER_NAME, "first"), (SESSION_HEADER_NAME, "second")]
    )
    assert response.headers[SESSION_HEADER_NAME] not in ("first", "second", "first, second")


@pytest.mark.parametrize("raw", HOSTILE_IDS)
def test_reject_mode_answers_400_without_echo(raw: str) -> None:
    called: list[bool] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        called.append(True)  # pragma: no cover
        return []  # pragma: no cover

    response, body = run_wsgi(
        SessionMiddleware(app, on_invalid="reject"), wsgi_environ(session_id=raw)
    )
    assert body == b"Invalid Mirascope-Session-Id header.\n"
    assert response.calls == [
        (
            "400 Bad Request",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "37")],
            None,
        )
    ]
    assert called == []


def test_session_is_current_while_the_server_iterates_and_closes() -> None:
    body = StreamedBody()
    middleware = SessionMiddleware(streaming_app(body))
    with session(id="server-thread") as outer:
        response = Client(middleware).get(headers={SESSION_HEADER_NAME: "stream-1"})
        response.close()
        assert current_session() is outer
    assert response.text == "0:stream-1;1:stream-1;2:stream-1;"
    assert body.seen == ["stream-1"] * 3
    assert body.closed_in == ["stream-1"]


def test_body_failing_mid_way_is_closed_in_the_session() -> None:
    body = StreamedBody(fail_at=1)
    environ = wsgi_environ(session_id="fail-1")
    result = SessionMiddleware(streaming_app(body))(environ, RecordingStartResponse())
    iterator = iter(result)
    assert next(iterator) == b"0:fail-1;"
    with pytest.raises(RuntimeError, match="body failed"):
        next(iterator)
    assert body.closed_in == ["fail-1"]
    result.close()  # type: ignore[attr-defined]
    assert body.closed_in == ["fail-1"]  # closed exactly once


def test_server_stopping_early_still_closes() -> None:
    body = StreamedBody(chunks=10)
    environ = wsgi_environ(session_id="early")
    result = SessionMiddleware(streaming_app(body))(environ, RecordingStartResponse())
    iterator = iter(result)
    next(iterator)
    result.close()  # type: ignore[attr-defined]
    assert body.seen == ["early"] and body.closed_in == ["early"]


@pytest.mark.parametrize("closable", [True, False], ids=["generator", "iterator-without-close"])
def test_lazy_bodies_with_and_without_close(closable: bool) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        if closable:
            return (chunk for chunk in [session_id_text().encode()])
        return iter([session_id_text().encode()])

    response = Client(SessionMiddleware(app)).get(headers={SESSION_HEADER_NAME: "lazy"})
    assert response.text == "lazy"
    response.close()


def test_late_start_response_and_exc_info_pass_through() -> None:
    seen: list[Any] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        try:
            raise ValueError("before any output")
        except ValueError:
            import sys

            start_response("200 OK", [])
            write = start_response("500 Internal Server Error", [], sys.exc_info())
            seen.append(write)
        yield b"late"

    captured: list[Any] = []
    marker = object()

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Any:
        captured.append((status, headers, exc_info))
        return marker

    environ = wsgi_environ(session_id="late")
    result = SessionMiddleware(app)(environ, start_response)
    assert captured == []  # a generator app starts the response when first iterated
    assert list(result) == [b"late"]
    assert [c[0] for c in captured] == ["200 OK", "500 Internal Server Error"]
    assert captured[1][1] == [(SESSION_HEADER_NAME, "late")]
    assert captured[1][2] is not None and captured[1][2][0] is ValueError
    assert seen == [marker]


@pytest.mark.parametrize("name", [SESSION_HEADER_NAME, "mirascope-session-id"])
def test_app_set_header_is_kept_and_not_duplicated(name: str) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [(name, "app-chosen")])
        return [b""]

    response = Client(SessionMiddleware(app)).get(headers={SESSION_HEADER_NAME: "incoming"})
    assert response.headers.getlist(SESSION_HEADER_NAME) == ["app-chosen"]


def test_constant_response_header_list_is_not_mutated() -> None:
    shared = [("Content-Type", "text/plain")]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", shared)
        return [b""]

    client = Client(SessionMiddleware(app))
    for _ in range(3):
        client.get()
    assert shared == [("Content-Type", "text/plain")]


def test_file_wrapper_passes_through() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"file body"))  # type: ignore[no-any-return]

    environ = wsgi_environ()
    environ["wsgi.file_wrapper"] = wsgiref.util.FileWrapper
    result = SessionMiddleware(app)(environ, RecordingStartResponse())
    assert isinstance(result, wsgiref.util.FileWrapper)


def test_list_body_is_returned_as_is() -> None:
    body = [b"a", b"b"]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return body

    environ = wsgi_environ()
    assert SessionMiddleware(app)(environ, RecordingStartResponse()) is body


def test_exception_from_the_app_passes_through_and_session_is_restored() -> None:
    error = ValueError("from the app")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise error

    with session(id="caller") as caller:
        with pytest.raises(ValueError) as raised:
            SessionMiddleware(app)(wsgi_environ(), RecordingStartResponse())
        assert raised.value is error
        assert current_session() is caller


def test_attributes_callable_gets_the_environ() -> None:
    seen: list[SessionContext | None] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(current_session())
        start_response("204 No Content", [])
        return []

    middleware = SessionMiddleware(
        app, attributes=lambda environ: {"method": environ["REQUEST_METHOD"]}
    )
    Client(middleware).post()
    assert seen[0] is not None and seen[0].attributes == {"method": "POST"}


def test_custom_header_name_reads_its_environ_key() -> None:
    response = Client(SessionMiddleware(plain_app, header_name="X-Conversation")).get(
        headers={"X-Conversation": "conv-7"}
    )
    assert response.headers["X-Conversation"] == "conv-7"
    assert response.text.startswith("conv-7|")


@pytest.mark.parametrize("streamed", [False, True], ids=["list", "generator"])
def test_passes_wsgiref_validator_on_both_sides(streamed: bool) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        if streamed:
            return (chunk.encode() for chunk in (session_id_text(), "!"))
        return [session_id_text().encode()]

    stack = wsgiref_validator(SessionMiddleware(wsgiref_validator(app)))
    for headers in ({SESSION_HEADER_NAME: "valid-1"}, {SESSION_HEADER_NAME: "a b"}, {}):
        response = Client(stack).get(headers=headers)
        assert response.headers[SESSION_HEADER_NAME] in response.text
        response.close()


def test_passes_werkzeug_lint_on_both_sides() -> None:
    # LintMiddleware reports through warnings, which this suite turns into errors.
    body = StreamedBody()
    stack = LintMiddleware(SessionMiddleware(LintMiddleware(streaming_app(body))))
    response = Client(stack).get(headers={SESSION_HEADER_NAME: "lint-1"})
    assert response.text == "0:lint-1;1:lint-1;2:lint-1;"
    response.close()
    assert body.closed_in == ["lint-1"]


def test_flask_stream_with_context_and_teardown_see_the_session() -> None:
    app = flask.Flask(__name__)
    teardown: list[str] = []

    @app.get("/stream")
    def stream() -> flask.Response:
        def chunks() -> Iterator[str]:
            for _ in range(3):
                yield session_id_text() + ";"

        return flask.Response(flask.stream_with_context(chunks()))

    @app.teardown_request
    def record(error: BaseException | None) -> None:
        teardown.append(session_id_text())

    app.wsgi_app = SessionMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    response = app.test_client().get("/stream", headers={SESSION_HEADER_NAME: "fl-1"})
    assert response.text == "fl-1;" * 3
    assert teardown and set(teardown) == {"fl-1"}


# No request state: the middleware sets the session inside a Context of the request's own,
# which must not outlive the request, and keeps nothing of a request on itself.


def failing_body_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    def body() -> Iterator[bytes]:
        yield b"one"
        if environ["PATH_INFO"] == "/raise":
            raise RuntimeError("body failure")
        yield b"two"

    start_response("200 OK", [])
    return body()


def contexts_holding_a_session() -> list[contextvars.Context]:
    gc.collect()
    return [
        obj
        for obj in gc.get_objects()
        if type(obj) is contextvars.Context and obj.run(current_session) is not None
    ]


@pytest.fixture
def only_new_objects_tracked() -> Iterator[None]:
    """Set every object made before the test aside (`gc.freeze`), so that `gc.collect()` and
    `gc.get_objects()` see only the test's own: seconds faster in a process that imported much."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("only_new_objects_tracked")
@pytest.mark.parametrize("on_invalid", ["generate", "reject"])
def test_wsgi_request_contexts_die_with_their_requests(on_invalid: Any) -> None:
    middleware = SessionMiddleware(failing_body_app, on_invalid=on_invalid)
    before = snapshot(middleware)
    for path in ["/", "/raise"]:
        for raw in SESSION_HEADER_VALUES:
            environ = wsgi_environ(
                path=path, session_id=None if raw is None else raw.decode("latin-1")
            )
            start_response = RecordingStartResponse()
            body = middleware(environ, start_response)
            try:
                for _chunk in body:
                    # While the body runs, the request's own Context holds its session;
                    # a rejected request never gets one.
                    statuses = [status for status, _, _ in start_response.calls]
                    assert bool(contexts_holding_a_session()) is (statuses == ["200 OK"])
            except RuntimeError:
                pass
            finally:
                getattr(body, "close", lambda: None)()
            del body
            assert current_session() is None
            assert contexts_holding_a_session() == []
    assert snapshot(middleware) == before


def test_request_listeners_hear_each_request_session_inside_it() -> None:
    heard: list[tuple[str, bool]] = []

    def listener(context: SessionContext) -> None:
        heard.append((context.id, current_session() is context))

    add_request_listener(listener)
    try:
        run_wsgi(SessionMiddleware(plain_app), wsgi_environ(session_id="heard-1"))
    finally:
        remove_request_listener(listener)
    assert heard == [("heard-1", True)]


def test_an_exception_object_left_by_two_sessions_names_neither() -> None:
    shared = RuntimeError("the same object every time")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise shared

    middleware = SessionMiddleware(app)
    for user in ("user-a", "user-a", "user-b", "user-c"):
        with pytest.raises(RuntimeError):
            run_wsgi(middleware, wsgi_environ(session_id=user))
        if user == "user-a":
            assert shared.__notes__ == ["ops-session: raised in session user-a"]
    assert shared.__notes__ == [SHARED_EXCEPTION_NOTE]


def test_notes_that_are_not_a_list_are_left_alone() -> None:
    error = RuntimeError("odd")
    error.__notes__ = ("a tuple",)  # type: ignore[assignment]
    note_session(error, SessionContext("odd-1"))
    assert error.__notes__ == ("a tuple",)  # type: ignore[comparison-overlap]
