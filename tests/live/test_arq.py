"""Sessions into arq jobs, on a real Redis and a real `arq` worker process.

The test process enqueues with `ops_session.arq.enqueue_job`; a burst-mode worker running the
functions in `apps/arq_app.py`, each wrapped by `continue_sessions`, works the queue off with up to
20 jobs at once on its event loop, then exits. Each job returns what it saw and writes one log
line through `SessionLogFilter`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job
from tools.files import complete_lines
from tools.queue_workers import arq_command, run_to_completion

from ops_session import session
from ops_session.arq import SESSION_KWARG, enqueue_job

from ..support.hostile import hostile_text

pytestmark = pytest.mark.redis

SETTINGS = "tests.live.apps.arq_app.WorkerSettings"
BAD_IDS = [param.values[0] for param in hostile_text()] + [42, ["chat-42"], b"chat-42"]
T = TypeVar("T")


def with_pool(redis_db: str, use: Callable[[ArqRedis], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = await create_pool(RedisSettings.from_dsn(redis_db))
        try:
            return await use(pool)
        finally:
            await pool.aclose()

    return asyncio.run(run())


def work(redis_db: str, tmp_path: Path) -> list[str]:
    """Run a burst worker until the queue is empty; return its log lines."""
    log_file = tmp_path / "arq.log"
    env = {"LOG_FILE": str(log_file), "REDIS_URL": redis_db}
    run_to_completion(arq_command(SETTINGS), tmp_path / "arq.out", env=env)
    return complete_lines(log_file)


def results(redis_db: str, jobs: list[Job] | list[str]) -> list[Any]:
    async def collect(pool: ArqRedis) -> list[Any]:
        ids = [job if isinstance(job, str) else job.job_id for job in jobs]
        return [await Job(job_id, pool).result(timeout=10) for job_id in ids]

    return with_pool(redis_db, collect)


Call = tuple[str | None, str, str, dict[str, Any]]


def enqueue(redis_db: str, calls: Sequence[Call]) -> list[Job]:
    """Enqueue (session id or None, function, label, extra kwargs) calls, each in its session."""

    async def send(pool: ArqRedis) -> list[Job]:
        jobs = []
        for session_id, function, label, kwargs in calls:
            if session_id is None:
                job = await enqueue_job(pool, function, label, **kwargs)
            else:
                with session(id=session_id):
                    job = await enqueue_job(pool, function, label, **kwargs)
            assert job is not None
            jobs.append(job)
        return jobs

    return with_pool(redis_db, send)


def test_job_enqueued_in_a_session_runs_in_it_and_one_outside_without(
    redis_db: str, tmp_path: Path
) -> None:
    jobs = enqueue(redis_db, [("chat-42", "seen", "inside", {}), (None, "seen", "outside", {})])
    lines = work(redis_db, tmp_path)
    inside, outside = results(redis_db, jobs)
    assert (inside["session_id"], outside["session_id"]) == ("chat-42", None)
    assert sorted(lines) == [
        f"session=- pid={outside['pid']} job ran label=outside",
        f"session=chat-42 pid={inside['pid']} job ran label=inside",
    ]


def test_opt_in_gives_jobs_without_a_session_one_of_their_own(
    redis_db: str, tmp_path: Path
) -> None:
    jobs = enqueue(
        redis_db,
        [(None, "seen_or_new", "a", {}), (None, "seen_or_new", "b", {}),
         ("chat-42", "seen_or_new", "kept", {})],
    )  # fmt: skip
    work(redis_db, tmp_path)
    first, second, kept = (seen["session_id"] for seen in results(redis_db, jobs))
    assert first and second and first != second
    assert kept == "chat-42"


def test_invalid_ids_are_ignored_and_never_logged(redis_db: str, tmp_path: Path) -> None:
    calls: list[Call] = [
        (None, "seen", f"bad-{index}", {SESSION_KWARG: bad_id})
        for index, bad_id in enumerate(BAD_IDS)
    ]
    jobs = enqueue(redis_db, calls)
    lines = work(redis_db, tmp_path)
    seen = results(redis_db, jobs)
    assert [s["session_id"] for s in seen] == [None] * len(BAD_IDS)
    assert sorted(lines) == sorted(
        f"session=- pid={s['pid']} job ran label={s['label']}" for s in seen
    )


def test_a_job_passes_its_session_to_the_jobs_it_enqueues(redis_db: str, tmp_path: Path) -> None:
    (parent,) = enqueue(redis_db, [("chat-parent", "enqueue_child", "parent", {})])
    work(redis_db, tmp_path)
    (child_id,) = results(redis_db, [parent])
    (child,) = results(redis_db, [child_id])
    assert child["session_id"] == "chat-parent"


def test_no_session_leaks_between_interleaved_jobs(redis_db: str, tmp_path: Path) -> None:
    """Hundreds of jobs from many sessions and from none, 20 at a time on one event loop."""
    expected: list[str | None] = [f"chat-{n}" for n in range(30) for _ in range(8)]
    expected += [None] * 60
    random.Random(14).shuffle(expected)
    jobs = enqueue(
        redis_db, [(session_id, "seen", f"mix-{i}", {}) for i, session_id in enumerate(expected)]
    )
    lines = work(redis_db, tmp_path)
    assert [seen["session_id"] for seen in results(redis_db, jobs)] == expected
    logged = {line.rsplit("label=", 1)[1]: line.split()[0] for line in lines}
    assert [logged[f"mix-{i}"] for i in range(len(expected))] == [
        f"session={session_id or '-'}" for session_id in expected
    ]
