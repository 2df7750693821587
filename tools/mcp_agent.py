"""An agent holding two conversations at once over one MCP connection to the MCP server example.

Shared by `make demo` and the example tests. Each conversation runs in its own session and calls
the example's `remember` tool on every turn, through one `mcp.Client` whose transport
`ops_session.mcp.send_session` wraps; the turns of both interleave on that one connection.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ops_session import session
from ops_session.mcp import send_session

CONVERSATIONS = ("chat-a", "chat-b")


@dataclass(frozen=True)
class Turn:
    """One tool call: the conversation that made it, and what the tool answered."""

    conversation: str
    turn: int
    tool_saw: str | None
    notes: int


async def interleaved_conversations(url: str, *, turns: int = 3) -> list[Turn]:
    """Both conversations at once over one connection; the turns in the order they finished."""
    finished: list[Turn] = []
    async with httpx2.AsyncClient(timeout=10) as http:
        transport = send_session(streamable_http_client(url, http_client=http), url=url)
        async with Client(transport) as client:

            async def conversation(name: str) -> None:
                with session(id=name):
                    for turn in range(1, turns + 1):
                        await asyncio.sleep(random.random() / 50)  # as a model would think
                        note = f"turn {turn} of {name}"
                        result = await client.call_tool("remember", {"note": note})
                        answer = result.structured_content or {}
                        finished.append(Turn(name, turn, answer["session_id"], answer["notes"]))

            await asyncio.gather(*(conversation(name) for name in CONVERSATIONS))
    return finished
