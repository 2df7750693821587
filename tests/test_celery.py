from __future__ import annotations

import gc
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from celery import Celery, Task
from celery.signals import after_task_publish, before_task_publish, task_postrun, task_prerun

from ops_session import SESSION_HEADER_NAME, SessionContext, current_session, session
from ops_session.celery import propagate_sessions, propagate_sessions_automatically


def current_id() -> str | None:
    current = current_session()
    return current.id if current else None


@pytest.fixture
def app() -> Celery:
    app = Celery("unit", broker="memory://", set_as_current=False)
    app.conf.task_always_eager = True
    propagate_sessions(app)
    return app


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    """The headers of every message published, as they left (after our receiver ran)."""
    messages: list[dict[str, Any]] = []

    def record(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        messages.append(dict(headers or {}))

    after_task_publish.connect(record, weak=False)
    yield messages
    after_task_publish.disconnect(record)


def make_task(app: Celery, seen: list[SessionContext | None]) -> Task[[], None]:
    @app.task(bind=True, max_retries=2, default_retry_delay=0)
    def record(self: Task[[], None]) -> None:
        seen.append(current_session())
        if self.request.retries < 2:
            raise self.retry()

    return record


def run_in_worker(task: Task[Any, Any], **request: Any) -> SessionContext | None:
    """Send prerun and postrun around a body as a worker does, with `request` as the message."""
    task.push_request(id="task-1", is_eager=False, **request)
    try:
        task_prerun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
        seen = current_session()
        task_postrun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
    finally:
        task.pop_request()
    return seen


def test_rejects_what_is_not_a_celery_app() -> None:
    with pytest.raises(TypeError, match=r"needs the Celery app, got str 'app'"):
        propagate_sessions("app")  # type: ignore[arg-type]


def test_calling_again_is_harmless_but_a_different_setting_is_an_error(app: Celery) -> None:
    propagate_sessions(app)
    receivers = len(task_prerun.receivers)
    propagate_sessions(app)
    propagate_sessions(Celery("other", set_as_current=False))
    assert len(task_prerun.receivers) == receivers
    with pytest.raises(ValueError, match="already called .* with generate=False"):
        propagate_sessions(app, generate=True)


def test_publish_writes_the_current_session_id_into_the_headers(
    app: Celery, published: list[dict[str, Any]]
) -> None:
    app.conf.task_always_eager = False
    with session(id="chat-42"):
        app.send_task("remote.task", ignore_result=True)
    app.send_task("remote.task", ignore_result=True)
    with session(id="chat-42"):
        app.send_task("remote.task", headers={SESSION_HEADER_NAME: "kept"}, ignore_result=True)
    assert [message.get(SESSION_HEADER_NAME) for message in published] == ["chat-42", None, "kept"]


def test_publish_also_writes_nested_headers_when_a_message_has_them() -> None:
    headers: dict[str, Any] = {"headers": {}}
    with session(id="chat-42"):
        before_task_publish.send(sender="remote.task", headers=headers)
        before_task_publish.send(sender="remote.task", headers=None)
    assert headers == {SESSION_HEADER_NAME: "chat-42", "headers": {SESSION_HEADER_NAME: "chat-42"}}


def test_worker_runs_the_task_in_the_message_session_then_restores(app: Celery) -> None:
    task = make_task(app, [])
    assert run_in_worker(task, **{SESSION_HEADER_NAME: "chat-42"}).id == "chat-42"  # type: ignore[union-attr]
    assert current_session() is None
    nested = {"headers": {SESSION_HEADER_NAME: "chat-43"}}
    assert run_in_worker(task, **nested).id == "chat-43"  # type: ignore[union-attr]
    with session(id="left-over") as left_over:
        # Something left current in a worker is hidden from a task without a session ...
        assert run_in_worker(task) is None
        # ... and current again afterwards: restored, not nulled.
        assert current_session() is left_over


@pytest.mark.parametrize("value", ["<script>", "a b", "a" * 129, 42, ["chat-42"], {"id": "x"}])
def test_worker_ignores_an_invalid_id(app: Celery, value: Any) -> None:
    task = make_task(app, [])
    assert run_in_worker(task, **{SESSION_HEADER_NAME: value}) is None
    assert run_in_worker(task, headers={SESSION_HEADER_NAME: value}) is None


def test_generate_gives_a_task_without_a_session_a_new_one() -> None:
    app = Celery("generating", set_as_current=False)
    propagate_sessions(app, generate=True)
    task = make_task(app, [])
    first, second = run_in_worker(task), run_in_worker(task)
    assert first is not None and second is not None and first.id != second.id
    assert run_in_worker(task, **{SESSION_HEADER_NAME: "chat-42"}).id == "chat-42"  # type: ignore[union-attr]


def test_tasks_of_other_apps_and_anonymous_signals_are_left_alone() -> None:
    other = Celery("not-propagating", set_as_current=False)
    task = make_task(other, [])
    with session(id="outer") as outer:
        assert run_in_worker(task, **{SESSION_HEADER_NAME: "chat-42"}) is outer
        task_prerun.send(sender=None, task_id="x", task=None, args=(), kwargs={})
        task_postrun.send(sender=None, task_id="x", task=None, args=(), kwargs={})
        assert current_session() is outer


def test_eager_task_runs_in_the_callers_session_and_leaves_it_in_place(app: Celery) -> None:
    seen: list[SessionContext | None] = []
    task = make_task(app, seen)
    with session(id="caller", attributes={"user": "ada"}) as caller:
        task.delay()  # retried twice, eagerly: three runs
        task.apply(headers={SESSION_HEADER_NAME: "caller"})
        assert current_session() is caller
    assert seen == [caller] * 6
    assert current_session() is None


def test_eager_task_without_a_session_runs_without_one(app: Celery) -> None:
    seen: list[SessionContext | None] = []
    make_task(app, seen).delay()
    assert seen == [None] * 3


def test_eager_task_with_another_valid_id_runs_in_it_then_restores_the_caller(app: Celery) -> None:
    seen: list[SessionContext | None] = []
    task = make_task(app, seen)
    with session(id="caller") as caller:
        task.apply(headers={SESSION_HEADER_NAME: "chat-42"})
        assert current_session() is caller
    assert [context.id if context else None for context in seen][0] == "chat-42"


def test_eager_generate_opens_a_session_only_where_the_caller_has_none() -> None:
    app = Celery("eager-generating", set_as_current=False)
    app.conf.task_always_eager = True
    propagate_sessions(app, generate=True)
    seen: list[SessionContext | None] = []
    task = make_task(app, seen)
    task.delay()
    assert seen[0] is not None
    with session(id="caller") as caller:
        task.delay()
    assert seen[3:] == [caller] * 3
    assert current_session() is None


def test_apps_are_not_kept_alive() -> None:
    app = Celery("dropped", set_as_current=False)
    propagate_sessions(app)
    reference = weakref.ref(app)
    del app
    gc.collect()
    assert reference() is None


def test_missing_celery_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)
    monkeypatch.delitem(sys.modules, "ops_session.celery")
    with pytest.raises(ImportError, match=r"install 'ops-session\[celery\]'"):
        import ops_session.celery  # noqa: F401


def test_prerun_twice_for_one_task_id_restores_in_reverse_order(app: Celery) -> None:
    task = make_task(app, [])
    task.push_request(**{"id": "task-1", "is_eager": False, SESSION_HEADER_NAME: "outer"})
    task_prerun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
    task.push_request(**{"id": "task-1", "is_eager": False, SESSION_HEADER_NAME: "inner"})
    task_prerun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
    assert current_id() == "inner"
    task_postrun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
    task.pop_request()
    assert current_id() == "outer"
    task_postrun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
    task.pop_request()
    assert current_session() is None


def test_two_executions_of_one_task_id_on_threads_each_restore_their_own(
    app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    """A threads pool can run one id twice at once (a redelivery): tokens are per execution."""
    both_running = threading.Barrier(2, timeout=10)
    seen: dict[str, str | None] = {}
    after: dict[str, SessionContext | None] = {}

    @app.task(bind=True)
    def work(self: Task[[], None]) -> None:
        both_running.wait()  # both executions are between prerun and postrun now
        seen[threading.current_thread().name] = current_id()

    assert work.store_eager_result is not None  # bind the lazy task before two threads do

    def execute(session_id: str) -> None:
        work.apply(task_id="same-id", headers={SESSION_HEADER_NAME: session_id})
        after[session_id] = current_session()

    threads = [threading.Thread(target=execute, args=(name,), name=name) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == {"one": "one", "two": "two"}
    assert after == {"one": None, "two": None}  # each thread's session was restored
    assert not [record for record in caplog.records if "raised" in record.getMessage()]


def test_an_explicit_call_replaces_the_automatic_setting() -> None:
    automatic = Celery("automatic", broker="memory://", set_as_current=False)
    propagate_sessions_automatically(automatic)
    propagate_sessions_automatically(automatic)  # again: still the automatic setting
    propagate_sessions(automatic, generate=True)  # the app's own choice wins, no ValueError
    propagate_sessions(automatic, generate=True)
    with pytest.raises(ValueError, match="generate=True"):
        propagate_sessions(automatic, generate=False)  # two explicit settings do conflict
    explicit = Celery("explicit", broker="memory://", set_as_current=False)
    propagate_sessions(explicit, generate=True)
    propagate_sessions_automatically(explicit)  # leaves the app's own setting alone
    propagate_sessions(explicit, generate=True)


def test_generate_must_be_a_bool(app: Celery) -> None:
    with pytest.raises(TypeError, match="generate=True or False, got 'yes'"):
        propagate_sessions(app, generate="yes")  # type: ignore[arg-type]


def test_publish_and_worker_use_the_process_header_name(
    app: Celery,
    published: list[dict[str, Any]],
    process_header_name: Callable[[str | None], None],
) -> None:
    """Issue 27, point 7: two services configured alike keep the session through Celery."""
    process_header_name("X-Conversation-Id")
    app.conf.task_always_eager = False
    with session(id="named-1"):
        app.send_task("remote.task", ignore_result=True)
    assert published[-1].get("X-Conversation-Id") == "named-1"
    assert SESSION_HEADER_NAME not in published[-1]
    task = make_task(app, [])
    assert run_in_worker(task, **{"X-Conversation-Id": "named-2"}).id == "named-2"  # type: ignore[union-attr]
    assert run_in_worker(task, **{SESSION_HEADER_NAME: "named-3"}) is None


def test_publish_follows_the_carrier_rule(
    app: Celery,
    published: list[dict[str, Any]],
    process_carriers: Callable[[Iterable[str] | None], None],
) -> None:
    """Issue 27, point 3: the job queue obeys the outgoing rule like every carrier."""
    app.conf.task_always_eager = False
    process_carriers(["kafka"])
    with session(id="ruled-1"):
        app.send_task("remote.task", ignore_result=True)
    process_carriers(["celery"])
    with session(id="ruled-2"):
        app.send_task("remote.task", ignore_result=True)
    assert [message.get(SESSION_HEADER_NAME) for message in published] == [None, "ruled-2"]


def test_a_bad_header_variable_neither_stamps_nor_reads(
    app: Celery, published: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
    app.conf.task_always_eager = False
    with session(id="bad-1"):
        app.send_task("remote.task", ignore_result=True)
    assert published[-1].get(SESSION_HEADER_NAME) is None
    task = make_task(app, [])
    assert run_in_worker(task, **{SESSION_HEADER_NAME: "bad-2"}) is None
