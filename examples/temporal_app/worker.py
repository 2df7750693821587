"""Run the chat-turn worker, or start one turn in a session.

python -m examples.temporal_app.worker                 # the worker
python -m examples.temporal_app.worker chat-42 hello   # one turn in session chat-42
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from ops_session import session
from ops_session.temporal import SessionInterceptor

from .workflows import TASK_QUEUE, ChatTurn, Summary, compose_reply

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")


async def connect(address: str = ADDRESS) -> Client:
    """A client whose calls, and the workers built on it, carry the session."""
    return await Client.connect(address, interceptors=[SessionInterceptor()])


def worker(client: Client) -> Worker:
    return Worker(
        client, task_queue=TASK_QUEUE, workflows=[ChatTurn, Summary], activities=[compose_reply]
    )


async def start_turn(client: Client, session_id: str | None, text: str) -> dict[str, str]:
    """Run one turn, inside `session_id` (or outside any session when it is `None`)."""
    turn_id = f"turn-{uuid.uuid4()}"
    if session_id is None:
        return await client.execute_workflow(ChatTurn.run, text, id=turn_id, task_queue=TASK_QUEUE)
    with session(id=session_id):
        return await client.execute_workflow(ChatTurn.run, text, id=turn_id, task_queue=TASK_QUEUE)


async def main(arguments: list[str]) -> None:
    client = await connect()
    if arguments:
        print(await start_turn(client, arguments[0], " ".join(arguments[1:]) or "hello"))
        return
    await worker(client).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
