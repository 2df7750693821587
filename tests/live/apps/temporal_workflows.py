"""Workflows and activities that report the session they run in: `-` outside any.

Workflow code reads `current_session()` from the ops_session the worker runs (passed through
Temporal's sandbox), which `ops_session.temporal.SessionInterceptor` sets from the headers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ops_session import current_session

TIMEOUT = timedelta(seconds=20)
RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=3)


def seen() -> str:
    current = current_session()
    return current.id if current is not None else "-"


@activity.defn
async def async_seen() -> str:
    return seen()


@activity.defn
def sync_seen() -> str:
    return seen()


@activity.defn
async def flaky_seen() -> str:
    """Fails its first attempt: the retry must run in the same session."""
    if activity.info().attempt == 1:
        raise ApplicationError("first attempt fails on purpose")
    return f"{seen()}@{activity.info().attempt}"


ACTIVITIES = [async_seen, sync_seen, flaky_seen]


@workflow.defn
class ChildWorkflow:
    @workflow.run
    async def run(self) -> str:
        return seen()


@workflow.defn
class SessionWorkflow:
    """Reports what it and everything it starts saw, then waits for `finish`."""

    def __init__(self) -> None:
        self.handlers: list[tuple[str, str]] = []
        self.finished = False

    @workflow.run
    async def run(self) -> dict[str, Any]:
        report: dict[str, Any] = {"workflow": seen()}
        report["async activity"] = await workflow.execute_activity(
            async_seen, start_to_close_timeout=TIMEOUT
        )
        report["sync activity"] = await workflow.execute_activity(
            sync_seen, start_to_close_timeout=TIMEOUT
        )
        report["retried activity"] = await workflow.execute_activity(
            flaky_seen, start_to_close_timeout=TIMEOUT, retry_policy=RETRY
        )
        report["local activity"] = await workflow.execute_local_activity(
            async_seen, start_to_close_timeout=TIMEOUT
        )
        report["child workflow"] = await workflow.execute_child_workflow(
            ChildWorkflow.run, id=f"{workflow.info().workflow_id}-child"
        )
        await workflow.wait_condition(lambda: self.finished)
        report["workflow after handlers"] = seen()
        report["handlers"] = self.handlers
        return report

    @workflow.signal
    def note(self, name: str) -> None:
        self.handlers.append((f"signal {name}", seen()))

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.update
    async def ask(self, name: str) -> str:
        self.handlers.append((f"update {name}", seen()))
        return seen()

    @ask.validator
    def check_ask(self, name: str) -> None:
        self.handlers.append((f"validator {name}", seen()))

    @workflow.query
    def current(self) -> str:
        return seen()


@workflow.defn
class ContinuedWorkflow:
    """Continues as new twice; the last run reports what each run saw."""

    @workflow.run
    async def run(self, seen_before: list[str]) -> list[str]:
        seen_now = [*seen_before, seen()]
        if len(seen_now) < 3:
            workflow.continue_as_new(seen_now)
        return [
            *seen_now,
            await workflow.execute_activity(async_seen, start_to_close_timeout=TIMEOUT),
        ]


@workflow.defn
class RetriedWorkflow:
    """Fails its first attempt; the retry, a new run, reports what it saw."""

    @workflow.run
    async def run(self) -> str:
        if workflow.info().attempt == 1:
            raise ApplicationError("first run fails on purpose")
        return f"{seen()}@{workflow.info().attempt}"


@workflow.defn
class BranchingWorkflow:
    """Schedules a different activity with and without a session: a replay that saw another
    session than the first run would schedule another activity, which Temporal refuses."""

    @workflow.run
    async def run(self) -> str:
        chosen = async_seen if current_session() is not None else sync_seen
        return await workflow.execute_activity(chosen, start_to_close_timeout=TIMEOUT)


@workflow.defn
class ListeningWorkflow:
    """Records the session of each `note` signal until it has two."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.notes) == 2)
        return self.notes

    @workflow.signal
    def note(self) -> None:
        self.notes.append(seen())


@workflow.defn
class SignallingWorkflow:
    """Signals a child workflow through its handle and as an external workflow."""

    @workflow.run
    async def run(self) -> list[str]:
        child_id = f"{workflow.info().workflow_id}-listener"
        child = await workflow.start_child_workflow(ListeningWorkflow.run, id=child_id)
        await child.signal(ListeningWorkflow.note)
        await workflow.get_external_workflow_handle(child_id).signal(ListeningWorkflow.note)
        return await child


WORKFLOWS = [
    SessionWorkflow,
    ChildWorkflow,
    ContinuedWorkflow,
    RetriedWorkflow,
    BranchingWorkflow,
    ListeningWorkflow,
    SignallingWorkflow,
]
