"""Send many requests at once to a real server, each with its own session id."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence

import httpx

from ops_session import SESSION_HEADER_NAME

# Shared by every client: loading the CA bundle for each new client takes about 40 ms.
_TLS_CONTEXT = ssl.create_default_context()


async def get_concurrently(
    base_url: str,
    session_ids: Sequence[str],
    path: str,
    *,
    clients: int,
    streams_per_client: int = 1,
    http2: bool = False,
    params: Mapping[str, str] | None = None,
) -> list[tuple[str, httpx.Response]]:
    """GET `path` once per session id, sending it in the session header; pair each id and response.

    `clients` clients each keep `streams_per_client` requests in flight (more than one only
    makes sense with `http2`, where they are streams on one connection). No client holds more:
    httpx's pool does work for every queued request on every connection, and with hundreds
    queued on one client, the client alone grows slow enough for the server to close keep-alive
    connections that sat idle meanwhile.
    """
    pending = iter(session_ids)  # shared: each sender takes the next id when it is free
    results: list[tuple[str, httpx.Response]] = []

    async def send_each(client: httpx.AsyncClient) -> None:
        for session_id in pending:
            headers = {SESSION_HEADER_NAME: session_id}
            results.append((session_id, await client.get(path, params=params, headers=headers)))

    async def use_one_client() -> None:
        async with httpx.AsyncClient(
            base_url=base_url, http1=not http2, http2=http2, timeout=30, verify=_TLS_CONTEXT
        ) as client:
            await asyncio.gather(*(send_each(client) for _ in range(streams_per_client)))

    await asyncio.gather(*(use_one_client() for _ in range(clients)))
    return results
