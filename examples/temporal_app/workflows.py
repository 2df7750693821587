"""One chat turn on Temporal: a workflow, its activity and a child workflow, each in the session.

Each reports the session it ran in. Run by `worker.py`; `make demo` starts it on a dev server.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from ops_session import current_session

TASK_QUEUE = "chat-turns"


def session_id() -> str:
    current = current_session()
    return current.id if current is not None else "(none)"


@activity.defn
async def compose_reply(text: str) -> list[str]:
    return [f"You said {text!r}.", session_id()]


@workflow.defn
class Summary:
    @workflow.run
    async def run(self) -> str:
        return session_id()


@workflow.defn
class ChatTurn:
    @workflow.run
    async def run(self, text: str) -> dict[str, str]:
        reply, activity_saw = await workflow.execute_activity(
            compose_reply, text, start_to_close_timeout=timedelta(seconds=30)
        )
        child_saw = await workflow.execute_child_workflow(
            Summary.run, id=f"{workflow.info().workflow_id}-summary"
        )
        return {
            "reply": reply,
            "workflow saw": session_id(),
            "activity saw": activity_saw,
            "child workflow saw": child_saw,
        }
