"""What agent code writes with the MCP and thread-pool integrations: type-checked, never run."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import fastmcp
import mcp
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer, Server

import ops_session.fastmcp
import ops_session.mcp
from ops_session.futures import SessionExecutor

URL = "http://tools.internal/mcp"

official_http = mcp.Client(ops_session.mcp.send_session(streamable_http_client(URL), url=URL))
official_stdio = mcp.Client(
    ops_session.mcp.send_session(stdio_client(StdioServerParameters(command="srv")), url=None)
)
official_server: MCPServer = ops_session.mcp.continue_sessions(MCPServer("tools"))
low_level: Server[Any] = ops_session.mcp.continue_sessions(Server("tools"), generate=True)
low_level.middleware.append(ops_session.mcp.SessionServerMiddleware())

fastmcp_server = fastmcp.FastMCP("tools", middleware=[ops_session.fastmcp.SessionMiddleware()])
fastmcp_client = fastmcp.Client(ops_session.fastmcp.send_session(URL))
in_memory = fastmcp.Client(ops_session.fastmcp.send_session(fastmcp_server))

pool = SessionExecutor(ThreadPoolExecutor(max_workers=4))
answer: Future[int] = pool.submit(len, "text")


async def in_a_worker() -> int:
    return await asyncio.get_running_loop().run_in_executor(pool, len, "text")
