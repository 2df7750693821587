"""The FastAPI example's chat page in headless Chromium, against the example under uvicorn.

The page starts without a session id, keeps the one the first response returns, sends it on
every `fetch` and opens its websocket with it as a query parameter. The server's spans and log
lines (files the example writes) must name the same session. Chromium is Debian's, driven by
Playwright; nothing is downloaded at run time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser
from tools.chat_browser import ChatRun, chat, chromium
from tools.example_services import ExampleService, fastapi_example
from tools.loopback import free_port, gunicorn_command, running, uvicorn_command

from ops_session import SESSION_HEADER_NAME

pytestmark = pytest.mark.servers

MESSAGES = ["Hello", "How are you?", "Bye"]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleService]:
    with fastapi_example(tmp_path_factory.mktemp("chat")) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as started:
        yield started


def run_chat(browser: Browser, url: str, socket_message: str | None = "ping") -> ChatRun:
    context = browser.new_context()
    try:
        return chat(context.new_page(), url, MESSAGES, socket_message)
    finally:
        context.close()  # closes the websocket, which ends its server span


def wait_for(found: Callable[[], list[Any]], count: int, what: str) -> list[Any]:
    deadline = time.monotonic() + 10
    while len(items := found()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected {count} {what}, found {items}")
        time.sleep(0.05)
    return items


def server_spans(example: ExampleService, session_id: str) -> list[tuple[str, str]]:
    return [
        (span["name"], span["attributes"]["http.url"])
        for span in example.spans()
        if span["kind"] == "SpanKind.SERVER" and span["attributes"].get("session.id") == session_id
    ]


def is_generated(session_id: str) -> bool:
    return uuid.UUID(session_id).version == 4


def test_fetch_turns_and_a_websocket_message_carry_one_session(
    example: ExampleService, browser: Browser
) -> None:
    # The page comes from 127.0.0.1 and calls localhost: another origin, so CORS must let it
    # send the session header and read it back.
    api = f"http://localhost:{example.port}"
    run = run_chat(browser, f"{example.url}/chat?api={api}")

    session_id = run.shown_session_id
    assert is_generated(session_id)  # the page started without one; the server made it
    assert run.sent_headers == [None, session_id, session_id]
    assert run.websocket_urls == [f"ws://localhost:{example.port}/chat/ws?session_id={session_id}"]
    assert [(turn.via, turn.session_id) for turn in run.turns] == [
        ("fetch", session_id),
        ("fetch", session_id),
        ("fetch", session_id),
        ("websocket", session_id),
    ]
    assert "Turn 3: you said 'Bye'." in run.turns[2].text
    assert "Over the websocket: you said 'ping'." in run.turns[3].text

    spans = wait_for(lambda: server_spans(example, session_id), 4, "server spans")
    assert sorted(spans) == sorted(
        [("POST /chat/turn", f"{api}/chat/turn")] * 3
        + [("HTTP /chat/ws", f"ws://localhost:{example.port}/chat/ws?session_id={session_id}")]
    )
    lines = [line for line in example.log_lines() if f" session={session_id} " in line]
    assert [line.rsplit(": ", 1)[1] for line in lines] == [
        "chat turn 1 over fetch",
        "chat turn 2 over fetch",
        "chat turn 3 over fetch",
        "chat message over the websocket",
    ]


def test_a_second_browser_context_gets_its_own_session(
    example: ExampleService, browser: Browser
) -> None:
    first, second = (run_chat(browser, f"{example.url}/chat") for _ in range(2))
    assert first.shown_session_id != second.shown_session_id
    for run in (first, second):
        assert is_generated(run.shown_session_id)
        assert {turn.session_id for turn in run.turns} == {run.shown_session_id}
        assert len(run.turns) == 4
        # Each context's second turn starts where its own first turn left off.
        assert "Turn 2:" in run.turns[1].text


@pytest.fixture(scope="module")
def cors_servers(example: ExampleService) -> Iterator[dict[str, str]]:
    """The CORS apps, allowing only the chat page's origin, each on its own port."""
    env = {"PAGE_ORIGIN": example.url}
    ports = [free_port() for _ in range(3)]
    commands = [
        uvicorn_command("tests.live.apps.cors_apps:fastapi_app", ports[0]),
        gunicorn_command("tests.live.apps.cors_apps:flask_app", ports[1]),
        uvicorn_command("tests.live.apps.cors_apps:no_expose_app", ports[2]),
    ]
    with (
        running(commands[0], ports[0], env=env) as fastapi_url,
        running(commands[1], ports[1], env=env) as flask_url,
        running(commands[2], ports[2], env=env) as no_expose_url,
    ):
        yield {"fastapi": fastapi_url, "flask-cors": flask_url, "no-expose": no_expose_url}


CROSS_ORIGIN_FETCH = """async ([url, header, sessionId]) => {
    const response = await fetch(url + "/session", {
        method: "POST", headers: { [header]: sessionId },
    });
    return [response.headers.get(header), (await response.json()).session_id];
}"""


@pytest.mark.parametrize(
    ("server", "readable"),
    [("fastapi", True), ("flask-cors", True), ("no-expose", False)],
)
def test_a_page_on_another_origin_sends_the_header_and_reads_it_where_cors_exposes_it(
    example: ExampleService,
    browser: Browser,
    cors_servers: dict[str, str],
    server: str,
    readable: bool,
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{example.url}/chat")
        read, seen = page.evaluate(
            CROSS_ORIGIN_FETCH, [cors_servers[server], SESSION_HEADER_NAME, "cors-42"]
        )
    finally:
        context.close()
    assert seen == "cors-42"  # the preflight allowed the header, so the server got it
    assert read == ("cors-42" if readable else None)
