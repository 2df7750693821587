"""The arq job functions and worker settings the job tests run under a real `arq` worker.

The worker runs up to 20 jobs at once on one event loop, each sleeping a little, so that jobs of
different sessions interleave. With `LOG_FILE` set each job also writes one log line through
`SessionLogFilter`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from typing import Any

from arq.connections import RedisSettings

from ops_session import current_session
from ops_session.arq import continue_sessions, enqueue_job
from ops_session.logging import SessionLogFilter

LOG_FORMAT = "session=%(session_id)s pid=%(process)d %(message)s"
log = logging.getLogger("arq_jobs")
if "LOG_FILE" in os.environ:
    _handler = logging.FileHandler(os.environ["LOG_FILE"], encoding="utf-8")
    _handler.addFilter(SessionLogFilter())
    _handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False


async def _seen(label: str) -> dict[str, Any]:
    before = current_session()
    await asyncio.sleep(random.random() / 200)  # let other jobs run in between
    current = current_session()
    assert current is before, "the session changed while the job was waiting"
    log.info("job ran label=%s", label)
    return {"label": label, "session_id": current.id if current else None, "pid": os.getpid()}


@continue_sessions
async def seen(ctx: dict[str, Any], label: str) -> dict[str, Any]:
    return await _seen(label)


@continue_sessions(generate=True)
async def seen_or_new(ctx: dict[str, Any], label: str) -> dict[str, Any]:
    return await _seen(label)


@continue_sessions
async def enqueue_child(ctx: dict[str, Any], label: str) -> str:
    """Enqueue another job from inside this one; return its id."""
    await _seen(label)
    job = await enqueue_job(ctx["redis"], "seen", f"{label}/child")
    assert job is not None
    return job.job_id


class WorkerSettings:
    functions = [seen, seen_or_new, enqueue_child]
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    max_jobs = 20
    keep_result = 600
