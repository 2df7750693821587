"""What users write to send the session to their own hosts, type-checked and never run."""

from __future__ import annotations

import aiohttp
import httpx
import httpx2
import requests

import ops_session.httpx
import ops_session.httpx2
import ops_session.requests
from ops_session import (
    OutgoingHosts,
    inject_session,
    set_outgoing_carriers,
    set_outgoing_hosts,
    set_session_header_name,
)
from ops_session.aiohttp import SessionTraceConfig

OURS = ["@private", "api.mycorp.com", "10.0.0.0/8"]

set_outgoing_hosts(OURS)
set_outgoing_hosts(None)
set_outgoing_carriers(["celery", "kafka", "grpc"])
set_outgoing_carriers(None)
set_session_header_name("X-Conversation-Id")
set_session_header_name(None)
allowed: bool = OutgoingHosts(OURS).allows("orders.internal")
hop: dict[str, str] = {}
inject_session(hop, host="orders.internal")

sync_client: httpx.Client = ops_session.httpx.send_session(httpx.Client(), hosts=OURS)
async_client: httpx.AsyncClient = ops_session.httpx.send_session(httpx.AsyncClient())
sync_client2: httpx2.Client = ops_session.httpx2.send_session(httpx2.Client(), hosts=OURS)
async_client2: httpx2.AsyncClient = ops_session.httpx2.send_session(httpx2.AsyncClient())
by_hand = httpx.Client(event_hooks={"request": [ops_session.httpx.SessionHeaderHook(hosts=OURS)]})
by_hand_async = httpx2.AsyncClient(
    event_hooks={"request": [ops_session.httpx2.add_session_header_async]}
)

http: requests.Session = ops_session.requests.send_session(requests.Session(), hosts=OURS)


async def call() -> None:
    config = SessionTraceConfig(hosts=OURS)
    async with aiohttp.ClientSession(trace_configs=[config]) as client:
        await client.get("http://orders.internal/")
