"""The chat-backend recipe (docs/chat-backend.md), run as a reader runs it, then checked in Phoenix.

The page's files and commands run as written (see `tests/support/shell.py`): Phoenix, Redis, a
Celery worker, the memory service under gunicorn and the chat service under uvicorn, all on
127.0.0.1, and the conversation with curl. The LLM provider is the OpenAI-compatible model server
of `tools/model_server.py`, on 127.0.0.2: a private address, which the default rule would allow,
and which the recipe's allow-list does not name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tools.model_server import ModelServer, model_server
from tools.phoenix import Phoenix, wait_for

from ..support.markdown import DOCS
from ..support.shell import PageRun, run_page

pytestmark = pytest.mark.servers

PAGE = DOCS / "chat-backend.md"
SESSION = "chat-42"
MESSAGES = ["Hello", "What did I say first?", "Thanks"]


@dataclass
class Recipe:
    run: PageRun
    model: ModelServer
    phoenix: Phoenix


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recipe]:
    with model_server() as model:
        env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.base_url}
        with run_page(PAGE, tmp_path_factory.mktemp("chat-backend"), env) as run:
            yield Recipe(run, model, Phoenix(run.url(6006)))


def replies(recipe: Recipe) -> list[dict[str, str]]:
    [output] = recipe.run.outputs.values()
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_every_turn_answers_in_the_session_with_the_memory_of_the_earlier_ones(
    recipe: Recipe,
) -> None:
    # The model counts the user's messages it was sent: the memory service gave it the earlier
    # turns of this session.
    assert replies(recipe) == [
        {
            "session": SESSION,
            "reply": f"You said {message!r}. That is message {number} of yours in this "
            "conversation.",
        }
        for number, message in enumerate(MESSAGES, start=1)
    ]


def test_the_llm_provider_gets_the_turns_but_never_the_session_id(recipe: Recipe) -> None:
    assert len(recipe.model.received) == len(MESSAGES)
    for request in recipe.model.received:
        names = {name.lower() for name, _ in request.headers}
        assert "traceparent" in names  # the propagators ran for this request ...
        assert "mirascope-session-id" not in names  # ... and the allow-list kept the id out
        assert not [value for _, value in request.headers if SESSION in value]


def test_the_memory_service_and_the_worker_log_in_the_session(recipe: Recipe) -> None:
    def worker_lines() -> list[str]:
        text = recipe.run.server("celery").text()
        return [line for line in text.splitlines() if "the conversation has" in line]

    lines = wait_for(lambda: len(worker_lines()) >= len(MESSAGES) and worker_lines(), what="jobs")
    assert all(f"INFO worker session={SESSION} tasks:" in line for line in lines)
    # The worker read the memory in the session: after the last turn it holds all six messages.
    assert lines[-1].endswith("the conversation has 6 messages")
    memory = recipe.run.server("memory:app").text()
    assert memory.count(f"INFO memory session={SESSION} memory: ") == len(MESSAGES)


def test_phoenix_shows_one_session_with_every_service_in_each_turn(recipe: Recipe) -> None:
    def traced_session() -> dict[str, Any] | None:
        found = recipe.phoenix.session(SESSION)
        return found if found and len(found["traces"]) == len(MESSAGES) else None

    session = wait_for(traced_session, what=f"Phoenix's session {SESSION}")
    for trace in session["traces"]:

        def complete(trace_id: str = trace["trace_id"]) -> list[dict[str, Any]] | None:
            spans = recipe.phoenix.spans(trace_id)
            names = {span["name"] for span in spans}
            wanted = {"POST /chat", "GET /turns", "run/tasks.summarize"}
            llm = [name for name in names if name.startswith("chat openai/gpt-4o-mini")]
            return spans if wanted <= names and llm else None

        spans = wait_for(complete, what=f"every service's spans in trace {trace['trace_id']}")
        assert {span["attributes"].get("session.id") for span in spans} == {SESSION}
