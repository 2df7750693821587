from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

import pytest
from opentelemetry.trace import Tracer

from ops_session import current_session, session
from ops_session.futures import SessionExecutor

from .conftest import Tracing

WORKERS = 4
TASKS_PER_SESSION = 100


def seen_in_worker(tracer: Tracer, label: str) -> tuple[str, str | None, str]:
    """What one task sees: its label, the session, and the thread it ran on; plus a span."""
    with tracer.start_as_current_span("blocking work", attributes={"label": label}):
        time.sleep(0.001)  # long enough that tasks of both sessions share the workers
        current = current_session()
        return label, current.id if current else None, threading.current_thread().name


def what_idle_workers_see(pool: ThreadPoolExecutor) -> list[tuple[str | None, str]]:
    """One plain task per worker at once (a barrier keeps each on its own thread)."""
    barrier = threading.Barrier(WORKERS, timeout=10)

    def report() -> tuple[str | None, str]:
        barrier.wait()
        current = current_session()
        return current.id if current else None, threading.current_thread().name

    return [future.result(timeout=10) for future in [pool.submit(report) for _ in range(WORKERS)]]


def check_two_sessions_shared_the_pool(
    results: list[tuple[str, str | None, str]], tracing: Tracing
) -> None:
    assert len(results) == 2 * TASKS_PER_SESSION
    for label, seen, _ in results:
        assert seen == label.split("/")[0]
    threads: dict[str, set[str]] = {"A": set(), "B": set()}
    for label, _, thread in results:
        threads[label.split("/")[0]].add(thread)
    assert threads["A"] & threads["B"], "both sessions ran tasks on the same worker threads"
    spans = tracing.exporter.get_finished_spans()
    assert len(spans) == 2 * TASKS_PER_SESSION
    for span in spans:
        assert span.attributes is not None
        assert span.attributes["session.id"] == str(span.attributes["label"]).split("/")[0]


def test_two_sessions_share_one_pool_and_each_task_sees_its_own(tracing: Tracing) -> None:
    tracer = tracing.provider.get_tracer("test")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        executor = SessionExecutor(pool)
        start = threading.Barrier(2, timeout=10)

        def submit_all(session_id: str) -> list[Any]:
            with session(id=session_id):
                start.wait()  # both sessions submit at the same time, interleaving
                return [
                    executor.submit(seen_in_worker, tracer, f"{session_id}/{n}")
                    for n in range(TASKS_PER_SESSION)
                ]

        with ThreadPoolExecutor(max_workers=2) as submitters:
            batches = list(submitters.map(submit_all, ["A", "B"]))
        results = [future.result(timeout=10) for batch in batches for future in batch]
        check_two_sessions_shared_the_pool(results, tracing)
        idle = what_idle_workers_see(pool)
    assert len({thread for _, thread in idle}) == WORKERS
    assert [seen for seen, _ in idle] == [None] * WORKERS


def test_run_in_executor_tasks_see_the_session_of_the_awaiting_task(tracing: Tracing) -> None:
    tracer = tracing.provider.get_tracer("test")

    async def conversation(executor: Executor, session_id: str) -> list[Any]:
        loop = asyncio.get_running_loop()
        with session(id=session_id):
            return await asyncio.gather(
                *(
                    loop.run_in_executor(executor, seen_in_worker, tracer, f"{session_id}/{n}")
                    for n in range(TASKS_PER_SESSION)
                )
            )

    async def both(executor: Executor) -> list[Any]:
        a, b = await asyncio.gather(conversation(executor, "A"), conversation(executor, "B"))
        return [*a, *b]

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = asyncio.run(both(SessionExecutor(pool)))
        check_two_sessions_shared_the_pool(results, tracing)
        assert [seen for seen, _ in what_idle_workers_see(pool)] == [None] * WORKERS


def test_tasks_of_one_session_run_at_once_each_in_its_own_copy() -> None:
    """One shared Context would raise here: two threads cannot enter it at the same time."""
    barrier = threading.Barrier(WORKERS, timeout=10)
    note: ContextVar[str] = ContextVar("note", default="unset")

    def meet(n: int) -> tuple[str | None, str]:
        note.set(f"task {n}")
        barrier.wait()  # all four tasks are inside their contexts at once
        current = current_session()
        return current.id if current else None, note.get()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool, session(id="chat-42"):
        executor = SessionExecutor(pool)
        results = [f.result(timeout=10) for f in [executor.submit(meet, n) for n in range(4)]]
        assert note.get() == "unset", "a task's changes stay in its own copy"
    assert results == [("chat-42", f"task {n}") for n in range(4)]


def test_submit_passes_arguments_and_exceptions_through() -> None:
    def divide(a: int, *, by: int) -> float:
        return a / by

    with SessionExecutor(ThreadPoolExecutor(max_workers=1)) as executor:
        assert executor.submit(divide, 6, by=3).result(timeout=10) == 2
        with pytest.raises(ZeroDivisionError):
            executor.submit(divide, 1, by=0).result(timeout=10)
        assert list(executor.map(lambda n: n * 2, [1, 2, 3], timeout=10)) == [2, 4, 6]


def test_map_runs_each_item_in_the_callers_session() -> None:
    def seen(_: int) -> str | None:
        current = current_session()
        return current.id if current else None

    with SessionExecutor(ThreadPoolExecutor(max_workers=2)) as executor:
        with session(id="chat-42"):
            results = executor.map(seen, range(8), timeout=10)
        assert list(results) == ["chat-42"] * 8


def test_shutdown_shuts_the_wrapped_executor_down() -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    SessionExecutor(pool).shutdown(wait=True, cancel_futures=True)
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(print)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: ProcessPoolExecutor(max_workers=1), id="process-pool"),
        pytest.param(lambda: object(), id="not-an-executor"),
    ],
)
def test_refuses_what_a_context_cannot_reach(make: Callable[[], Any]) -> None:
    executor = make()
    try:
        with pytest.raises(TypeError, match="needs a thread-based"):
            SessionExecutor(executor)
    finally:
        if isinstance(executor, Executor):
            executor.shutdown()
