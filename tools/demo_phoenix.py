"""`make demo-phoenix`: one conversation's traces, grouped as a session in Arize Phoenix.

Starts Phoenix and both example services on 127.0.0.1 (the services export their spans to
Phoenix over OTLP/HTTP), sends a short scripted chat in one session, some turns crossing the hop
from FastAPI to Flask, and prints the address of that session's page in Phoenix. Everything keeps
running until Ctrl-C, then is stopped by process id. `--once` stops as soon as the page is ready.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from ops_session import SESSION_HEADER_NAME

from .example_services import ExampleService, example_services
from .phoenix import Phoenix, running_phoenix, wait_for

# (what the user says, the route that answers): the hops reach the Flask service.
CHAT = [
    ("hello", "/session"),
    ("what can you do?", "/hop"),
    ("ask the other service", "/hop/requests"),
    ("and once more through the propagator", "/hop/propagator"),
    ("thanks, bye", "/session"),
]


@dataclass(frozen=True)
class PhoenixDemo:
    """Phoenix, both services, and the session that the scripted chat made."""

    phoenix: Phoenix
    services: tuple[ExampleService, ExampleService, ExampleService]
    session_id: str
    trace_ids: list[str]  # as Phoenix lists them under the session
    page: str


def send_chat(fastapi_app: ExampleService, session_id: str) -> list[str]:
    """Send the scripted chat in one session; the session id each turn was answered with."""
    answered = []
    with httpx.Client(base_url=fastapi_app.url, timeout=10) as client:
        for message, route in CHAT:
            response = client.get(
                f"{route}?message={quote(message)}", headers={SESSION_HEADER_NAME: session_id}
            )
            response.raise_for_status()
            answered.append(response.headers[SESSION_HEADER_NAME])
    return answered


@contextmanager
def phoenix_demo(phoenix: Phoenix | None = None, *, timeout: float = 60.0) -> Iterator[PhoenixDemo]:
    """Run everything, send the chat, and yield once Phoenix shows the session with every turn.

    Starts Phoenix too, unless one is given.
    """
    with ExitStack() as stack:
        server = phoenix or stack.enter_context(running_phoenix())
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with example_services(directory, otlp_endpoint=server.traces_endpoint) as services:
            session_id = f"chat-{secrets.token_hex(4)}"
            send_chat(services[0], session_id)
            found = wait_for(
                lambda: (
                    (session := server.session(session_id))
                    and len(session["traces"]) == len(CHAT)
                    and session
                ),
                timeout=timeout,
                what=f"session {session_id} with {len(CHAT)} traces",
            )
            trace_ids = [trace["trace_id"] for trace in found["traces"]]
            yield PhoenixDemo(server, services, session_id, trace_ids, server.session_page(found))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo_phoenix", description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop once the page is ready")
    options = parser.parse_args(argv)
    print("Starting Arize Phoenix and the two example services on 127.0.0.1 ...", flush=True)
    with phoenix_demo() as demo:
        fastapi_app, flask_app, _ = demo.services
        print(f"  Phoenix: {demo.phoenix.url}")
        print(f"  FastAPI: {fastapi_app.url}   Flask: {flask_app.url}\n")
        print(f"Sent a chat of {len(CHAT)} turns in session {demo.session_id}:")
        for message, route in CHAT:
            print(f"  {message!r:42} -> GET {route}")
        print(f"\nPhoenix groups its {len(CHAT)} traces as one session:\n\n  {demo.page}\n")
        if not options.once:
            print("Open it in a browser. Press Ctrl-C to stop Phoenix and both services.")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    print("\nPhoenix and both services stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
