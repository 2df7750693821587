"""Sessions into Celery tasks, on a real Redis and real `celery worker` processes.

The test process publishes with the app in `apps/celery_app.py`; a worker (prefork with two
children, or solo) runs the tasks and reports what each saw through the Redis result backend, its
log lines (through `SessionLogFilter`) and its spans (OpenTelemetry's Celery instrumentation
with `SessionSpanProcessor`), both written to files.
"""

from __future__ import annotations

import gc
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import chain, chord, group
from celery.result import AsyncResult
from tools.files import complete_lines
from tools.queue_workers import celery_command, worker

from ops_session import SESSION_HEADER_NAME, session

from ..support.hostile import hostile_text
from .apps import celery_app

pytestmark = pytest.mark.redis

APP = "tests.live.apps.celery_app"
TIMEOUT = 60
INTERLEAVED_SESSIONS = 40
TASKS_PER_SESSION = 8
TASKS_WITHOUT_SESSION = 80
# Values no worker may accept as a session id: hostile text, and what JSON carries besides.
BAD_IDS = [param.values[0] for param in hostile_text()] + [42, ["chat-42"], {"id": "chat-42"}]


@dataclass(frozen=True)
class Worker:
    pool: str
    queue: str
    log_file: Path
    spans_file: Path
    output: Path

    def log_lines(self) -> list[str]:
        return complete_lines(self.log_file)

    def spans(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in complete_lines(self.spans_file)]


@pytest.fixture(autouse=True)
def results_collected_only_between_calls() -> Iterator[None]:
    """Keep the cyclic garbage collector out of the tests' Redis calls.

    A collected `AsyncResult` unsubscribes from the result backend in `__del__`: run by a
    collection that starts inside a subscribe on the same connection, it waits forever.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.fixture(scope="module")
def broker(redis_url: str) -> Iterator[str]:
    url = f"{redis_url}/1"
    celery_app.app.conf.update(broker_url=url, result_backend=url)
    yield url
    # Results unsubscribe from Redis when collected: let them do it while Redis still runs.
    gc.collect()


def start_worker(
    broker: str, directory: Path, pool: str, queue: str, **env: str
) -> Iterator[Worker]:
    started = Worker(
        pool, queue, directory / "worker.log", directory / "spans.jsonl", directory / "out.txt"
    )
    command = [*celery_command(APP, pool=pool, concurrency=2), "-Q", queue, "-n", f"{queue}@%h"]
    environment = {
        "REDIS_URL": broker,
        "LOG_FILE": str(started.log_file),
        "SPANS_FILE": str(started.spans_file),
        **env,
    }
    with worker(command, started.output, env=environment) as process:
        try:
            # A worker listens on no port: it is ready once it has run a task.
            celery_app.seen.apply_async(("ready",), queue=queue).get(timeout=TIMEOUT)
        except Exception:
            print(started.output.read_text(errors="replace"))
            raise
        yield started
        assert process.poll() is None, started.output.read_text(errors="replace")


@pytest.fixture(scope="module", params=["prefork", "solo"])
def celery_worker(
    request: pytest.FixtureRequest, broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    pool: str = request.param
    yield from start_worker(broker, tmp_path_factory.mktemp(pool), pool, f"jobs-{pool}")


@pytest.fixture(scope="module")
def generating_worker(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A worker whose app calls `propagate_sessions(app, generate=True)`."""
    directory = tmp_path_factory.mktemp("generate")
    yield from start_worker(broker, directory, "solo", "jobs-generate", GENERATE_SESSIONS="1")


def result(async_result: AsyncResult[Any]) -> Any:
    return async_result.get(timeout=TIMEOUT)


def wait_for_log(worker: Worker, needle: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in worker.log_lines() if needle in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def task_span(worker: Worker, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        for span in worker.spans():
            if span["attributes"].get("messaging.message.id") == task_id:
                return span
        if time.monotonic() > deadline:
            raise AssertionError(f"no span for task {task_id}")
        time.sleep(0.05)


def test_task_published_in_a_session_runs_in_it_with_its_log_line_and_span(
    celery_worker: Worker,
) -> None:
    with session(id="chat-42", attributes={"user": "ada"}):
        sent = celery_app.seen.apply_async(("in-session",), queue=celery_worker.queue)
    seen = result(sent)
    assert seen["session_id"] == "chat-42"
    assert wait_for_log(celery_worker, "label=in-session") == [
        f"session=chat-42 pid={seen['pid']} task ran label=in-session"
    ]
    span = task_span(celery_worker, sent.id)
    assert span["name"] == f"run/{APP}.seen"
    assert span["attributes"]["session.id"] == "chat-42"
    assert span["attributes"]["mirascope.ops.session.id"] == "chat-42"
    # Only the id travels: the attributes stay in the publishing process.
    assert "mirascope.ops.session.attributes" not in span["attributes"]


def test_task_published_outside_a_session_runs_without_one(celery_worker: Worker) -> None:
    sent = celery_app.seen.apply_async(("no-session",), queue=celery_worker.queue)
    seen = result(sent)
    assert seen["session_id"] is None
    assert wait_for_log(celery_worker, "label=no-session") == [
        f"session=- pid={seen['pid']} task ran label=no-session"
    ]
    assert "session.id" not in task_span(celery_worker, sent.id)["attributes"]


def test_opt_in_gives_tasks_without_a_session_one_of_their_own(
    generating_worker: Worker,
) -> None:
    queue = generating_worker.queue
    first, second = (result(celery_app.seen.apply_async((label,), queue=queue)) for label in "ab")
    assert first["session_id"] and second["session_id"]
    assert first["session_id"] != second["session_id"]
    with session(id="chat-42"):
        kept = celery_app.seen.apply_async(("kept",), queue=queue)
    assert result(kept)["session_id"] == "chat-42"


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=repr)
def test_invalid_id_in_a_message_is_ignored_and_never_logged(
    celery_worker: Worker, bad_id: Any
) -> None:
    label = f"bad-{random.randrange(10**9)}"
    sent = celery_app.seen.apply_async(
        (label,), queue=celery_worker.queue, headers={SESSION_HEADER_NAME: bad_id}
    )
    seen = result(sent)
    assert seen["session_id"] is None
    assert wait_for_log(celery_worker, f"label={label}") == [
        f"session=- pid={seen['pid']} task ran label={label}"
    ]
    assert "session.id" not in task_span(celery_worker, sent.id)["attributes"]


def test_invalid_id_does_not_replace_the_publishers_session(celery_worker: Worker) -> None:
    """A header set by hand is kept as `inject_session` keeps it, and then ignored by the worker."""
    with session(id="chat-42"):
        sent = celery_app.seen.apply_async(
            ("hand-set",), queue=celery_worker.queue, headers={SESSION_HEADER_NAME: "a b"}
        )
    assert result(sent)["session_id"] is None


def test_explicit_and_automatic_retries_keep_the_session(celery_worker: Worker) -> None:
    queue = celery_worker.queue
    with session(id="chat-retry"):
        explicit = celery_app.retry_explicitly.apply_async(("explicit",), queue=queue)
        automatic = celery_app.retry_automatically.apply_async(("automatic",), queue=queue)
    explicit_seen, automatic_seen = result(explicit), result(automatic)
    assert (explicit_seen["retries"], explicit_seen["session_id"]) == (2, "chat-retry")
    assert (automatic_seen["retries"], automatic_seen["session_id"]) == (2, "chat-retry")
    assert all("session=chat-retry" in line for line in wait_for_log(celery_worker, "retrying"))


def test_chains_groups_and_chords_keep_the_session(celery_worker: Worker) -> None:
    queue = celery_worker.queue
    seen, seen_after = celery_app.seen, celery_app.seen_after
    with session(id="chat-canvas"):
        chained = chain(
            seen.s("link-1").set(queue=queue),
            seen_after.s("link-2").set(queue=queue),
            seen_after.s("link-3").set(queue=queue),
        ).apply_async()
        grouped = group(seen.s(f"member-{i}").set(queue=queue) for i in range(4)).apply_async()
        chorded = chord(
            [seen.s(f"header-{i}").set(queue=queue) for i in range(3)],
            seen_after.s("body").set(queue=queue),
        ).apply_async()
    assert [s["session_id"] for s in result(chained)] == ["chat-canvas"] * 3
    assert [s["session_id"] for s in grouped.get(timeout=TIMEOUT)] == ["chat-canvas"] * 4
    assert [s["session_id"] for s in result(chorded)] == ["chat-canvas"] * 4


def test_a_task_passes_its_session_to_the_tasks_it_publishes(celery_worker: Worker) -> None:
    with session(id="chat-parent"):
        parent = celery_app.publish_child.apply_async(
            ("parent", celery_worker.queue), queue=celery_worker.queue
        )
    child = celery_app.app.AsyncResult(result(parent))
    assert result(child)["session_id"] == "chat-parent"


def test_no_session_leaks_between_interleaved_tasks(celery_worker: Worker) -> None:
    """Hundreds of tasks from many sessions and from none, shuffled: each sees only its own."""
    expected: list[str | None] = [
        f"chat-{n}" for n in range(INTERLEAVED_SESSIONS) for _ in range(TASKS_PER_SESSION)
    ] + [None] * TASKS_WITHOUT_SESSION
    random.Random(14).shuffle(expected)
    sent = []
    for index, session_id in enumerate(expected):
        label = f"mix-{index}"
        if session_id is None:
            sent.append(celery_app.seen.apply_async((label,), queue=celery_worker.queue))
        else:
            with session(id=session_id):
                sent.append(celery_app.seen.apply_async((label,), queue=celery_worker.queue))
    seen = [result(async_result) for async_result in sent]
    assert [s["session_id"] for s in seen] == expected
    if celery_worker.pool == "prefork":
        assert len({s["pid"] for s in seen}) == 2, "both child processes ran tasks"
    logged = {
        line.rsplit("label=", 1)[1]: line.split()[0]
        for line in wait_for_log(celery_worker, "label=mix-")
    }
    deadline = time.monotonic() + 10
    while len(logged) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
        logged = {
            line.rsplit("label=", 1)[1]: line.split()[0]
            for line in celery_worker.log_lines()
            if "label=mix-" in line
        }
    assert [logged[f"mix-{i}"] for i in range(len(expected))] == [
        f"session={session_id or '-'}" for session_id in expected
    ]
