"""Sessions into RQ jobs, on a real Redis and real `rq worker` processes (forking and simple).

The test process enqueues on a queue whose job class is `SessionJob`; a burst-mode worker started
with `--job-class ops_session.rq.SessionJob` works the queue off and exits. Each job returns what
it saw and writes one log line through `SessionLogFilter`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from tools.files import complete_lines
from tools.queue_workers import rq_command, run_to_completion

from ops_session import session
from ops_session.rq import SESSION_META_KEY, SessionJob

from ..support.hostile import hostile_text
from .apps import rq_jobs

pytestmark = pytest.mark.redis

WORKERS = {"simple": "rq.worker.SimpleWorker", "forking": "rq.worker.Worker"}
BAD_IDS = [param.values[0] for param in hostile_text()] + [42, ["chat-42"], b"chat-42"]


@pytest.fixture
def connection(redis_db: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_db)
    yield client
    client.close()


@pytest.fixture
def queue(connection: redis.Redis) -> Queue:
    return Queue("jobs", connection=connection, job_class=SessionJob)


def work(queue: Queue, redis_db: str, tmp_path: Path, kind: str, job_class: str = "") -> list[str]:
    """Run a burst worker of `kind` until the queue is empty; return its log lines."""
    log_file = tmp_path / f"{kind}.log"
    command = rq_command(redis_db, queue.name, worker_class=WORKERS[kind])
    if job_class:
        command[command.index("ops_session.rq.SessionJob")] = job_class
    run_to_completion(command, tmp_path / f"{kind}.out", env={"LOG_FILE": str(log_file)})
    return complete_lines(log_file)


def returned(job: Job, connection: redis.Redis) -> Any:
    fetched = SessionJob.fetch(job.id, connection=connection)
    assert fetched.get_status() == "finished", fetched.exc_info
    return fetched.return_value()


@pytest.mark.parametrize("kind", WORKERS)
def test_job_enqueued_in_a_session_runs_in_it_and_one_outside_without(
    queue: Queue, connection: redis.Redis, redis_db: str, tmp_path: Path, kind: str
) -> None:
    with session(id="chat-42", attributes={"user": "ada"}):
        inside = queue.enqueue(rq_jobs.seen, "inside")
    outside = queue.enqueue(rq_jobs.seen, "outside")
    lines = work(queue, redis_db, tmp_path, kind)
    seen_inside, seen_outside = returned(inside, connection), returned(outside, connection)
    assert seen_inside["session_id"] == "chat-42"
    assert seen_outside["session_id"] is None
    assert sorted(lines) == sorted(
        [
            f"session=chat-42 pid={seen_inside['pid']} job ran label=inside",
            f"session=- pid={seen_outside['pid']} job ran label=outside",
        ]
    )
    if kind == "forking":
        assert seen_inside["pid"] != seen_outside["pid"], "each job ran in its own work horse"


def test_opt_in_gives_jobs_without_a_session_one_of_their_own(
    connection: redis.Redis, redis_db: str, tmp_path: Path
) -> None:
    queue = Queue("jobs", connection=connection, job_class=rq_jobs.GeneratingJob)
    first, second = queue.enqueue(rq_jobs.seen, "a"), queue.enqueue(rq_jobs.seen, "b")
    work(queue, redis_db, tmp_path, "simple", "tests.live.apps.rq_jobs.GeneratingJob")
    ids = {returned(first, connection)["session_id"], returned(second, connection)["session_id"]}
    assert None not in ids and len(ids) == 2


def test_invalid_ids_in_job_meta_are_ignored_and_never_logged(
    queue: Queue, connection: redis.Redis, redis_db: str, tmp_path: Path
) -> None:
    jobs = [
        queue.enqueue(rq_jobs.seen, f"bad-{index}", meta={SESSION_META_KEY: bad_id})
        for index, bad_id in enumerate(BAD_IDS)
    ]
    lines = work(queue, redis_db, tmp_path, "simple")
    seen = [returned(job, connection) for job in jobs]
    assert [s["session_id"] for s in seen] == [None] * len(BAD_IDS)
    assert lines == [f"session=- pid={s['pid']} job ran label={s['label']}" for s in seen]


def test_a_job_passes_its_session_to_the_jobs_it_enqueues(
    queue: Queue, connection: redis.Redis, redis_db: str, tmp_path: Path
) -> None:
    with session(id="chat-parent"):
        parent = queue.enqueue(rq_jobs.enqueue_child, "parent")
    work(queue, redis_db, tmp_path, "simple")
    child = SessionJob.fetch(returned(parent, connection), connection=connection)
    assert returned(child, connection)["session_id"] == "chat-parent"


@pytest.mark.parametrize(("kind", "sessions", "per_session", "without"), [
    ("simple", 30, 8, 60),
    ("forking", 10, 4, 20),
])  # fmt: skip
def test_no_session_leaks_between_interleaved_jobs(
    queue: Queue,
    connection: redis.Redis,
    redis_db: str,
    tmp_path: Path,
    kind: str,
    sessions: int,
    per_session: int,
    without: int,
) -> None:
    expected: list[str | None] = [f"chat-{n}" for n in range(sessions) for _ in range(per_session)]
    expected += [None] * without
    random.Random(14).shuffle(expected)
    jobs = []
    for index, session_id in enumerate(expected):
        if session_id is None:
            jobs.append(queue.enqueue(rq_jobs.seen, f"mix-{index}"))
        else:
            with session(id=session_id):
                jobs.append(queue.enqueue(rq_jobs.seen, f"mix-{index}"))
    lines = work(queue, redis_db, tmp_path, kind)
    assert [returned(job, connection)["session_id"] for job in jobs] == expected
    logged = {line.rsplit("label=", 1)[1]: line.split()[0] for line in lines}
    assert [logged[f"mix-{i}"] for i in range(len(expected))] == [
        f"session={session_id or '-'}" for session_id in expected
    ]
