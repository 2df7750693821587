"""The RQ job functions the job tests run under a real `rq worker` with `SessionJob`.

Each returns what it saw; with `LOG_FILE` set (in the worker) each also writes one log line
through `SessionLogFilter`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rq import Queue, get_current_job

from ops_session import current_session
from ops_session.logging import SessionLogFilter
from ops_session.rq import SessionJob

LOG_FORMAT = "session=%(session_id)s pid=%(process)d %(message)s"
log = logging.getLogger("rq_jobs")
if "LOG_FILE" in os.environ:
    _handler = logging.FileHandler(os.environ["LOG_FILE"], encoding="utf-8")
    _handler.addFilter(SessionLogFilter())
    _handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def seen(label: str) -> dict[str, Any]:
    current = current_session()
    log.info("job ran label=%s", label)
    return {"label": label, "session_id": current.id if current else None, "pid": os.getpid()}


def enqueue_child(label: str) -> str:
    """Enqueue another job from inside this one, on the same queue; return its id."""
    job = get_current_job()
    assert job is not None
    queue = Queue(job.origin, connection=job.connection, job_class=SessionJob)
    seen(label)
    return queue.enqueue(seen, f"{label}/child").id


class GeneratingJob(SessionJob):
    generate_session = True
