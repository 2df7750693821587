"""The chat's notes: each turn files its message with the MCP server example's `remember` tool.

The example imports this module only when `MCP_SERVER_URL` names that server's endpoint (such as
`http://127.0.0.1:5003/mcp`). One MCP connection, opened in the app's lifespan, serves every
conversation: `ops_session.mcp.send_session` writes the caller's session into each tool call as
it is sent (`_meta`, and the session header where the outgoing rule allows the host), so the
server files each note under the conversation that sent it, however the turns interleave. The
SDK also carries the turn's trace context in `_meta` (`traceparent`), so the tool's server span
is a child in the turn's trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ops_session.mcp import send_session

TIMEOUT = 10.0


class Notes:
    """The `remember` tool of the MCP server example, over one shared connection."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def remember(self, message: str) -> int:
        """File `message` under the current session; how many notes that conversation holds."""
        result = await self._client.call_tool("remember", {"note": message})
        answer = result.structured_content or {}
        if result.is_error or not isinstance(answer.get("notes"), int):
            raise RuntimeError(f"The MCP tool 'remember' failed: {result.content!r}")
        return int(answer["notes"])


@asynccontextmanager
async def connected_notes(url: str) -> AsyncIterator[Notes]:
    """One connection to the MCP server at `url` for the app's lifetime."""
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        transport = send_session(streamable_http_client(url, http_client=http), url=url)
        async with Client(transport) as client:
            yield Notes(client)
