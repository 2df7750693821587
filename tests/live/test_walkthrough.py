"""The walkthrough of docs/logging.md, run as a reader runs it: its files, commands, three turns.

Its files and commands run as written (see `tests/support/shell.py`), so the test fails when the
page's text stops working. Then three turns of one conversation must show one session in every
span and log line of both services.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tools.files import complete_lines

from ops_session import SESSION_HEADER_NAME, is_valid_session_id

from ..support.markdown import DOCS
from ..support.shell import run_page

pytestmark = pytest.mark.servers

PAGE = DOCS / "logging.md"
TURNS = ["hello", "what is open", "thanks"]


@dataclass
class Walkthrough:
    chat_url: str
    chat_output: Path
    orders_output: Path


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    directory = tmp_path_factory.mktemp("walkthrough")
    with run_page(PAGE, directory) as run:
        chat, orders = run.server("uvicorn"), run.server("gunicorn")
        yield Walkthrough(run.url(8000), chat.output, orders.output)


def spans(output: Path) -> list[dict[str, Any]]:
    lines = complete_lines(output)
    return [json.loads(line) for line in lines if line.startswith("{")]


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the services did not write what was expected"
        time.sleep(0.05)


def test_three_turns_keep_one_session_across_spans_and_logs(walkthrough: Walkthrough) -> None:
    outputs = (walkthrough.chat_output, walkthrough.orders_output)
    earlier = {output: len(spans(output)) for output in outputs}  # the page's own turns
    replies = []
    headers: dict[str, str] = {}
    with httpx.Client(base_url=walkthrough.chat_url, timeout=10) as client:
        for text in TURNS:
            response = client.post("/chat", params={"text": text}, headers=headers)
            assert response.status_code == 200, response.text
            headers = {SESSION_HEADER_NAME: response.headers[SESSION_HEADER_NAME]}
            replies.append(response.json())
    session_id = headers[SESSION_HEADER_NAME]
    assert is_valid_session_id(session_id)
    assert [reply["session"] for reply in replies] == [session_id] * 3
    assert replies[0]["reply"] == "You said 'hello'; 2 open."

    def server_spans(output: Path) -> list[dict[str, Any]]:
        return [
            span for span in spans(output)[earlier[output] :] if span["kind"] == "SpanKind.SERVER"
        ]

    for output in outputs:
        wait_for(lambda output=output: len(server_spans(output)) >= 3)
        ours = spans(output)[earlier[output] :]
        assert {span["attributes"].get("session.id") for span in ours} == {session_id}
        assert len(server_spans(output)) == 3

    chat_log = walkthrough.chat_output.read_text(encoding="utf-8")
    assert chat_log.count(f"session={session_id} turn received") == 3
    assert chat_log.count(f'session={session_id} "POST /chat?text=') == 3  # access lines
    orders_log = walkthrough.orders_output.read_text(encoding="utf-8")
    assert orders_log.count(f"INFO session={session_id} listing orders") == 3
    assert orders_log.count(f'"GET /orders HTTP/1.1" 200 session={session_id}') == 3


def test_a_second_conversation_gets_its_own_session(walkthrough: Walkthrough) -> None:
    with httpx.Client(base_url=walkthrough.chat_url, timeout=10) as client:
        first = client.post("/chat", params={"text": "hi"}).json()["session"]
        second = client.post("/chat", params={"text": "hi"}).json()["session"]
    assert first != second
