"""RQ: a job runs in the session that was current where it was enqueued.  [extra: rq]

RQ has no signals, but lets both sides choose the job class: `SessionJob` writes the current
session's id into the job's `meta` when it is created, and continues it around `perform()` in the
worker.
"""

from __future__ import annotations

from typing import Any, ClassVar

try:
    from rq.job import Job
except ImportError as error:
    raise ImportError("ops_session.rq needs RQ: install 'ops-session[rq]'.") from error

from ._core import (
    SESSION_HEADER_NAME,
    SessionContext,
    activate,
    current_session,
    deactivate,
    is_valid_session_id,
)
from ._outgoing import may_carry_session, outgoing_header_name

__all__ = ["SESSION_META_KEY", "SessionJob"]

SESSION_META_KEY = SESSION_HEADER_NAME
"""The `job.meta` key that carries the session id: the process-wide session header name, this
one unless `set_session_header_name` or `OPS_SESSION_HEADER_NAME` name another."""


class SessionJob(Job):
    """An RQ job that carries the session from `enqueue` into the worker that performs it.

    Give it to the queue that enqueues and to the worker. Enqueuing inside a session stores the
    id in `job.meta`; the worker makes it current while the job function runs (in the work horse
    for the forking `Worker`, in the worker itself for `SimpleWorker`), then restores the
    previous session. Jobs enqueued outside any session run without one, unless a subclass sets
    `generate_session = True`. An invalid id in `meta` is ignored. Retried jobs keep their `meta`,
    and jobs a job enqueues carry its session. Only the id is stored, never the attributes.

    Example:
        queue = Queue(connection=Redis(), job_class=SessionJob)
        # rq worker --job-class ops_session.rq.SessionJob
    """

    generate_session: ClassVar[bool] = False
    """Give jobs enqueued outside any session a new session of their own in the worker."""

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> Job:
        """Create the job as `Job.create` does, with the current session's id in its `meta`.

        An id already in `meta` is kept, so a caller can still send another on purpose. Nothing
        is written when the outgoing rule leaves `rq` out of `OPS_SESSION_OUTGOING_CARRIERS`.
        """
        job = super().create(*args, **kwargs)
        current = current_session()
        if current is not None and may_carry_session("rq", None):
            name = outgoing_header_name()
            if name is not None:
                job.meta.setdefault(name, current.id)
        return job

    def perform(self) -> Any:
        """Run the job function inside the session its `meta` carries."""
        name = outgoing_header_name()
        value = self.meta.get(name) if name is not None else None
        # Job data is input: anything but a well-formed id is ignored and never logged.
        incoming = value if isinstance(value, str) and is_valid_session_id(value) else None
        current = current_session()
        if incoming is not None and current is not None and current.id == incoming:
            # A synchronous queue (`is_async=False`) runs the job inside the enqueuing session.
            return super().perform()
        if incoming is not None:
            context: SessionContext | None = SessionContext(incoming)
        else:
            # None also hides anything an earlier job or a library left current in the worker.
            context = SessionContext() if self.generate_session else None
        token = activate(context)
        try:
            return super().perform()
        finally:
            deactivate(token)
