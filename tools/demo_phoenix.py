"""`make demo-phoenix`: an LLM conversation, grouped as a session in Arize Phoenix.

Starts Phoenix, the FastAPI example, the MCP server example and a small OpenAI-compatible model
server (`tools/model_server.py`), all on loopback. Each chat turn of the FastAPI example calls
the MCP server's `remember` tool over streamable HTTP, then `mirascope.llm` against the model
server, traced by Mirascope's ops into the example's tracer provider. Both examples export to
Phoenix over OTLP/HTTP. The script sends a three-turn chat in one session and prints the address
of that session's page in Phoenix: three turns, each with its input, output and tokens, and in
each turn's trace the MCP server's `tools/call remember` span, stamped with the session.

The session id is user data and the model server a third party: the example may send the id
only to 127.0.0.1, where our own services run (`OPS_SESSION_OUTGOING_HOSTS`), the MCP server
among them. The model server listens on 127.0.0.2, so it never receives the id, although
OpenTelemetry's `ops_session` propagator runs on every call. Everything keeps running until
Ctrl-C, then is stopped by process id. `--once` stops as soon as the page is ready.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ops_session import SESSION_HEADER_NAME

from .example_services import (
    ExampleService,
    fastapi_example,
    mcp_endpoint,
    mcp_example,
    wait_for_trace,
)
from .loopback import HOST
from .model_server import ModelServer, model_server
from .phoenix import Phoenix, running_phoenix, wait_for

CHAT = ["hello", "what can you do?", "thanks, bye"]
# The outgoing allow-list: the hosts of our own services, the only ones the session id may reach.
OUR_HOSTS = HOST


def chat_env(model: ModelServer, mcp_server: ExampleService) -> dict[str, str]:
    """The FastAPI example's settings for turns that call `mcp_server`'s tool, then `model`,
    with the allow-list."""
    return {
        "LLM_BASE_URL": model.base_url,
        "MCP_SERVER_URL": mcp_endpoint(mcp_server),
        "OPS_SESSION_OUTGOING_HOSTS": OUR_HOSTS,
    }


@dataclass(frozen=True)
class PhoenixDemo:
    """Phoenix, the chat service, the MCP server, the model server, and the chat's session."""

    phoenix: Phoenix
    chat_app: ExampleService
    mcp_server: ExampleService
    model: ModelServer
    session_id: str
    replies: list[str]
    trace_ids: list[str]  # as Phoenix lists them under the session
    page: str


def send_chat(chat_app: ExampleService, session_id: str) -> list[str]:
    """Send the chat's turns in one session; the replies."""
    replies = []
    with httpx.Client(base_url=chat_app.url, timeout=10) as client:
        for message in CHAT:
            response = client.post(
                "/chat/turn", json={"message": message}, headers={SESSION_HEADER_NAME: session_id}
            )
            response.raise_for_status()
            if response.headers[SESSION_HEADER_NAME] != session_id:
                raise RuntimeError(f"the chat answered in another session: {response.headers}")
            replies.append(str(response.json()["reply"]))
    return replies


def wait_until_stored(
    phoenix: Phoenix, services: Sequence[ExampleService], session_id: str, *, timeout: float
) -> dict[str, Any]:
    """Phoenix's session once it holds every turn's trace and every span the services exported.

    Each of `services` has a server span in every turn's trace.

    A turn's spans reach Phoenix in batches, its root span last: until then, its page would show
    the turn without its input, output or tokens.
    """
    found: dict[str, Any] = wait_for(
        lambda: (
            (session := phoenix.session(session_id))
            and len(session["traces"]) == len(CHAT)
            and session
        ),
        timeout=timeout,
        what=f"session {session_id} with {len(CHAT)} traces",
    )
    for trace_id in [trace["trace_id"] for trace in found["traces"]]:
        exported = len(wait_for_trace(services, trace_id, timeout=timeout))
        wait_for(
            partial(_stored_all, phoenix, trace_id, exported),
            timeout=timeout,
            what=f"all {exported} spans of trace {trace_id}",
        )
    return found


def _stored_all(phoenix: Phoenix, trace_id: str, exported: int) -> bool:
    return len(phoenix.spans(trace_id)) == exported


@contextmanager
def phoenix_demo(phoenix: Phoenix | None = None, *, timeout: float = 60.0) -> Iterator[PhoenixDemo]:
    """Run everything, send the chat, and yield once Phoenix holds the session and its spans.

    Starts Phoenix too, unless one is given.
    """
    with ExitStack() as stack:
        server = phoenix or stack.enter_context(running_phoenix())
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        model = stack.enter_context(model_server())
        mcp_server = stack.enter_context(
            mcp_example(directory, otlp_endpoint=server.traces_endpoint)
        )
        chat_app = stack.enter_context(
            fastapi_example(
                directory, otlp_endpoint=server.traces_endpoint, env=chat_env(model, mcp_server)
            )
        )
        session_id = f"chat-{secrets.token_hex(4)}"
        replies = send_chat(chat_app, session_id)
        found = wait_until_stored(server, [chat_app, mcp_server], session_id, timeout=timeout)
        trace_ids = [trace["trace_id"] for trace in found["traces"]]
        page = server.session_page(found)
        yield PhoenixDemo(server, chat_app, mcp_server, model, session_id, replies, trace_ids, page)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo_phoenix", description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop once the page is ready")
    options = parser.parse_args(argv)
    print(
        "Starting Arize Phoenix, the chat service, an MCP server and a model server on loopback",
        "...",
        flush=True,
    )
    with phoenix_demo() as demo:
        print(f"  Phoenix: {demo.phoenix.url}")
        print(f"  chat (FastAPI example): {demo.chat_app.url}/chat")
        print(f"  MCP server (its tool `remember`): {mcp_endpoint(demo.mcp_server)}")
        print(f"  model server (a third party): {demo.model.base_url}\n")
        print(f"Sent a chat of {len(CHAT)} turns in session {demo.session_id}:")
        for message, reply in zip(CHAT, demo.replies, strict=True):
            print(f"  {message!r:20} -> {reply}")
        leaked = [
            request.path
            for request in demo.model.received
            if any(demo.session_id in f"{name}: {value}" for name, value in request.headers)
        ]
        print(
            f"\nThe model server received {len(demo.model.received)} requests, "
            f"{len(leaked)} of them with the session id ({SESSION_HEADER_NAME} goes to "
            f"{OUR_HOSTS} only)."
        )
        print(
            f"\nPhoenix groups the {len(CHAT)} turns as one session, each turn's trace with the "
            f"MCP server's `tools/call remember` span:\n\n  {demo.page}\n"
        )
        if not options.once:
            print("Open it in a browser. Press Ctrl-C to stop everything.")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    print("\nPhoenix, the chat service, the MCP server and the model server stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
