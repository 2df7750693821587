"""Run as a script with OTEL_PROPAGATORS set: send one request per client inside a session.

Nothing here names SessionPropagator: OpenTelemetry loads it from the entry point that
OTEL_PROPAGATORS selects, and its httpx and requests instrumentations inject it.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import requests
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from ops_session import session


async def main(url: str) -> dict[str, str]:
    HTTPXClientInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    seen: dict[str, str] = {}
    with session(id="otel-prop-1"):
        with httpx.Client() as client:
            seen["httpx"] = client.get(url).text
        async with httpx.AsyncClient() as async_client:
            seen["httpx-async"] = (await async_client.get(url)).text
        seen["requests"] = requests.get(url, timeout=10).text
    seen["outside"] = requests.get(url, timeout=10).text
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
