"""The walkthrough, run as a reader runs it: its files, its commands, three turns.

It is in two places for now, and both run: docs/logging.md, whose files and commands run as
written (see `tests/support/shell.py`), and the README, whose two services, log configuration and
server commands are read from README.md (ports are free ones on 127.0.0.1 instead of 8000/8001).
Either fails when its text stops working. Then three turns of one conversation must show one
session in every span and log line of both services.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tools.files import complete_lines
from tools.loopback import HOST, free_port, running

from ops_session import SESSION_HEADER_NAME, is_valid_session_id

from ..support.markdown import DOCS, code_blocks
from ..support.shell import run_page

pytestmark = pytest.mark.servers

PAGE = DOCS / "logging.md"
TURNS = ["hello", "what is open", "thanks"]


def readme_blocks() -> dict[str, str]:
    """The walkthrough's files by name, and its shell commands under "commands"."""
    blocks: dict[str, str] = {}
    for block in code_blocks("python"):
        if block.source.startswith(("# orders.py", "# chat.py")):
            blocks[block.source.split()[1]] = block.source
    for block in code_blocks("json"):
        if "uvicorn.access" in block.source:
            blocks["logging.json"] = block.source
    for block in code_blocks("sh"):
        if "gunicorn orders:app" in block.source:
            blocks["commands"] = block.source
    assert set(blocks) == {"orders.py", "chat.py", "logging.json", "commands"}
    return blocks


def command(commands: str, program: str, port: int) -> list[str]:
    """The README's command line for `program`, on `port`, run by this interpreter."""
    for line in commands.replace("\\\n", " ").splitlines():
        words = shlex.split(line.rstrip("& "))
        if words and words[0] == program:
            words = [
                word.replace("8001", str(port)).replace("8000", str(port)) for word in words[1:]
            ]
            return [sys.executable, "-m", program, *words]
    raise AssertionError(f"no {program} command in the README")


@dataclass
class Walkthrough:
    chat_url: str
    chat_output: Path
    orders_output: Path


@pytest.fixture(scope="module", params=["docs/logging.md", "README.md"])
def walkthrough(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Walkthrough]:
    directory = tmp_path_factory.mktemp("walkthrough")
    if request.param == "docs/logging.md":
        with run_page(PAGE, directory) as run:
            chat, orders = run.server("uvicorn"), run.server("gunicorn")
            yield Walkthrough(run.url(8000), chat.output, orders.output)
        return
    blocks = readme_blocks()
    for name in ("orders.py", "chat.py", "logging.json"):
        (directory / name).write_text(blocks[name], encoding="utf-8")
    orders_port, chat_port = free_port(), free_port()
    orders_command = command(blocks["commands"], "gunicorn", orders_port)
    chat_command = command(blocks["commands"], "uvicorn", chat_port)
    env = {"PYTHONUNBUFFERED": "1", "ORDERS_URL": f"http://{HOST}:{orders_port}"}
    walk = Walkthrough("", directory / "chat.out", directory / "orders.out")
    with (
        running(orders_command, orders_port, cwd=directory, env=env, output=walk.orders_output),
        running(chat_command, chat_port, cwd=directory, env=env, output=walk.chat_output) as url,
    ):
        walk.chat_url = url
        yield walk


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
