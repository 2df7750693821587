"""Thread pools: blocking work handed to an executor runs in the session of the code that handed it.

`asyncio.to_thread` and Starlette's `run_in_threadpool` copy the caller's context into the worker
thread; `Executor.submit` and `loop.run_in_executor` copy nothing, so the task sees whatever the
worker thread holds: no session, or on Python 3.14 with `sys.flags.thread_inherit_context` set,
the session of the caller that happened to start that worker. `SessionExecutor` wraps an executor
so that each task runs in a copy of its own caller's context. Nothing in the standard library is
patched. Stdlib only.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["SessionExecutor"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class SessionExecutor(Executor):
    """An executor whose tasks each run in a copy of the context they were submitted from.

    Wraps a thread-based executor (`ThreadPoolExecutor`, or any with the same threads model).
    `submit` copies the caller's context for each task, so the task sees the caller's session,
    current span and every other context variable, and whatever it sets stays in its own copy:
    the worker thread holds no session before or after. Each task gets a copy of its own, never
    one shared `Context`, which two threads cannot enter at once. `map` submits through `submit`,
    and `loop.run_in_executor(SessionExecutor(pool), fn)` calls it from the awaiting task.
    `shutdown` shuts the wrapped executor down.

    Args:
        executor: The executor that runs the tasks.

    Raises:
        TypeError: `executor` is not an `Executor`, or is a `ProcessPoolExecutor`, whose tasks
            run in another process that a context cannot reach (hand such work to a job
            queue: see `ops_session.celery`, `ops_session.rq` and `ops_session.arq`).

    Example:
        pool = SessionExecutor(ThreadPoolExecutor(max_workers=4))
        future = pool.submit(summarize, text)  # summarize sees the caller's session
    """

    def __init__(self, executor: Executor) -> None:
        if not isinstance(executor, Executor) or isinstance(executor, ProcessPoolExecutor):
            raise TypeError(
                "SessionExecutor() needs a thread-based concurrent.futures.Executor, got "
                f"{type(executor).__qualname__}: pass a ThreadPoolExecutor."
            )
        self.executor = executor

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Schedule `fn(*args, **kwargs)` in a copy of the caller's context, made for this task."""
        context = contextvars.copy_context()

        def run_in_callers_context() -> _T:
            return context.run(fn, *args, **kwargs)

        return self.executor.submit(run_in_callers_context)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.executor.shutdown(wait=wait, cancel_futures=cancel_futures)
