"""Background jobs: what carrying the session costs a Celery task, beside asgi-correlation-id.

Each configuration's signal handlers (before_task_publish, task_prerun, task_postrun) are taken
from the receivers its own setup connects, then disconnected and called directly, with the
arguments Celery passes them: the headers of a real task message, and a task whose request was
built from that message. Each call also pushes and pops the task's request, as the worker does;
the first row is that work alone, the floor under any handler.
"""

from __future__ import annotations

import contextvars
import timeit
from collections.abc import Callable
from typing import Any

from asgi_correlation_id.context import correlation_id
from asgi_correlation_id.extensions.celery import load_correlation_ids
from celery import Celery, Task
from celery.signals import before_task_publish, task_postrun, task_prerun

from ops_session import session
from ops_session.celery import propagate_sessions

from . import report
from .asgi_apps import VALID_ID
from .timing import Result, Sampler, per_call_microseconds

Handler = Callable[..., object]
SIGNALS = (before_task_publish, task_prerun, task_postrun)
TASK_NAME = "chat.summarize"


def _message_headers(app: Celery) -> dict[str, Any]:
    """The headers of the message `summarize.apply_async(("conversation-42",))` publishes."""
    message = app.amqp.create_task_message(
        "6f1c2b7e-0000-4f5e-9a8b-7c6d5e4f3a2b", TASK_NAME, ("conversation-42",), {}
    )
    return dict(message.headers)


def _handlers(connect: Callable[[], object]) -> list[Handler]:
    """The publish, prerun and postrun receivers that `connect()` adds; they are disconnected."""
    before = [list(signal.receivers) for signal in SIGNALS]
    connect()
    handlers = []
    for signal, old in zip(SIGNALS, before, strict=True):
        (added,) = [entry for entry in signal.receivers if entry not in old]
        signal.receivers.remove(added)
        handlers.append(added[1])
    return handlers


def _one_task(
    task: Task[Any, Any], headers: dict[str, Any], handlers: list[Handler] | None
) -> Callable[[], None]:
    """Publish (stamping a copy of the headers), then run prerun and postrun around nothing."""
    publish, prerun, postrun = handlers or (None, None, None)
    body: tuple[tuple[str], dict[str, Any], dict[str, None]] = (
        ("conversation-42",),
        {},
        {"callbacks": None, "errbacks": None, "chain": None},
    )
    properties = {"correlation_id": headers["id"], "reply_to": ""}

    def run() -> None:
        sent = dict(headers)
        if publish is not None:
            publish(
                signal=before_task_publish, sender=TASK_NAME, body=body, exchange="",
                routing_key="celery", headers=sent, properties=properties, declare=[],
                retry_policy=None,
            )  # fmt: skip
        worker.run(execute, sent)

    def execute(sent: dict[str, Any]) -> None:
        task.push_request(sent, args=body[0], kwargs=body[1], called_directly=False)
        try:
            if prerun is not None:
                prerun(signal=task_prerun, sender=task, task_id=sent["id"], task=task,
                       args=body[0], kwargs=body[1])  # fmt: skip
            if postrun is not None:
                postrun(signal=task_postrun, sender=task, task_id=sent["id"], task=task,
                        args=body[0], kwargs=body[1], retval=None, state="SUCCESS")  # fmt: skip
        finally:
            task.pop_request()

    # The worker's side runs in a context of its own, as in a worker process: what its handlers
    # set or clear there never reaches the publisher's.
    worker = contextvars.Context()
    return run


def samplers(calls: int) -> dict[str, Sampler]:
    """Name -> sampler of microseconds per task. The first is Celery's own work alone."""
    app = Celery("bench", set_as_current=False)

    @app.task(name=TASK_NAME)
    def summarize(conversation: str) -> None:
        pass

    headers = _message_headers(app)
    ours = _handlers(lambda: propagate_sessions(app))
    theirs = _handlers(load_correlation_ids)

    def timed(run: Callable[[], None], around: Callable[[Callable[[], float]], float]) -> Sampler:
        sample = per_call_microseconds(timeit.Timer(run).timeit, calls)
        return lambda: around(sample)

    def plain(sample: Callable[[], float]) -> float:
        return sample()

    def in_session(sample: Callable[[], float]) -> float:
        with session(id=VALID_ID):
            return sample()

    def with_correlation_id(sample: Callable[[], float]) -> float:
        token = correlation_id.set(VALID_ID.replace("-", ""))
        try:
            return sample()
        finally:
            correlation_id.reset(token)

    return {
        "Celery alone: copy the headers, push and pop the request": timed(
            _one_task(summarize, headers, None), plain
        ),
        "ops-session, published in a session": timed(
            _one_task(summarize, headers, ours), in_session
        ),
        "ops-session, published outside any session": timed(
            _one_task(summarize, headers, ours), plain
        ),
        "asgi-correlation-id, published with an id": timed(
            _one_task(summarize, headers, theirs), with_correlation_id
        ),
        "asgi-correlation-id, published without (it generates one)": timed(
            _one_task(summarize, headers, theirs), plain
        ),
    }


FLOOR = "Celery alone: copy the headers, push and pop the request"
YARDSTICK = "asgi-correlation-id, published with an id"


def table(results: list[Result]) -> str:
    """µs per task, and what each configuration adds to Celery's own work (paired medians)."""

    def floor(name: str) -> str:
        return FLOOR

    rows = []
    for result in results:
        if result.name == FLOOR:
            rows.append([result.name, f"{result.median:.2f}", report.spread(result), "—", "—"])
            continue
        added = report.overhead(results, result.name, floor)
        ratio = report.overhead_ratio(results, result.name, YARDSTICK, floor)
        rows.append(
            [
                result.name,
                f"{result.median:.2f}",
                report.spread(result),
                f"{added:+.2f}",
                f"{ratio:.2f}",
            ]
        )
    header = ["configuration", "µs per task", "min–max", "added, µs", f"× {YARDSTICK}"]
    return report.table(header, rows)
