"""An agent that holds two conversations over one MCP client connection, for either SDK's client.

`converse` runs conversations A and B at once, each in its own session, interleaving tool
calls, resource reads and prompt gets over the one connection it is given, plus calls made
outside any session; it returns what every handler said it saw. The `check_*` functions hold
the server's spans and log lines (from `tests/live/apps/mcp_servers.py`) against those calls.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fastmcp
import mcp
from mcp_types import TextContent, TextResourceContents

from ops_session import session

CONVERSATIONS = ("chat-a", "chat-b")
TURNS = 4
OUTSIDE = "outside"
"""The label prefix of calls made outside any session."""


@dataclass(frozen=True)
class Seen:
    """What one handler answered: the kind of request, its label and the session it ran in."""

    kind: str
    label: str
    session_id: str | None

    @property
    def conversation(self) -> str | None:
        prefix = self.label.split(".")[0]
        return None if prefix == OUTSIDE else prefix


Ask = Callable[[str, str], Awaitable[str]]
"""(kind, label) -> the handler's JSON answer: one request over the client under test."""


def official_asker(client: mcp.Client) -> Ask:
    async def ask(kind: str, label: str) -> str:
        if kind == "tool":
            content = (await client.call_tool("whoami", {"label": label})).content[0]
            assert isinstance(content, TextContent)
            return content.text
        if kind == "resource":
            contents = (await client.read_resource(f"session://whoami/{label}")).contents[0]
            assert isinstance(contents, TextResourceContents)
            return contents.text
        message = (await client.get_prompt("whoami_prompt", {"label": label})).messages[0]
        assert isinstance(message.content, TextContent)
        return message.content.text

    return ask


def fastmcp_asker(client: fastmcp.Client[Any]) -> Ask:
    async def ask(kind: str, label: str) -> str:
        if kind == "tool":
            content = (await client.call_tool("whoami", {"label": label})).content[0]
            assert isinstance(content, TextContent)
            return content.text
        if kind == "resource":
            contents = (await client.read_resource(f"session://whoami/{label}"))[0]
            assert isinstance(contents, TextResourceContents)
            return contents.text
        message = (await client.get_prompt("whoami_prompt", {"label": label})).messages[0]
        assert isinstance(message.content, TextContent)
        return message.content.text

    return ask


async def converse(ask: Ask, *, turns: int = TURNS) -> list[Seen]:
    """Conversations A and B at once over one connection, and calls outside any session."""

    async def conversation(name: str | None) -> list[Seen]:
        prefix = name or OUTSIDE
        requests = [("tool", f"{prefix}.{turn}") for turn in range(turns)]
        requests += [("resource", f"{prefix}.r"), ("prompt", f"{prefix}.p")]
        if name is None:
            return [await _seen(ask, kind, label) for kind, label in requests]
        with session(id=name):
            return [await _seen(ask, kind, label) for kind, label in requests]

    parts = await asyncio.gather(*(conversation(name) for name in (*CONVERSATIONS, None)))
    return [seen for part in parts for seen in part]


async def _seen(ask: Ask, kind: str, label: str) -> Seen:
    answer = json.loads(await ask(kind, label))
    assert (answer["kind"], answer["label"]) == (kind, label)
    return Seen(kind, label, answer["session_id"])


def check_answers(seen: list[Seen], *, turns: int = TURNS) -> None:
    """Every request ran in its own conversation's session, and calls outside in none."""
    assert len(seen) == 3 * (turns + 2)
    assert {s.kind for s in seen} == {"tool", "resource", "prompt"}
    for answer in seen:
        assert answer.session_id == answer.conversation, answer


_LOG_LINE = re.compile(r"session=(?P<session>\S+) (?P<kind>\w+) ran label=(?P<label>\S+)")


def check_log_lines(lines: Iterable[str], *, turns: int = TURNS) -> None:
    """Each handler's line names its own conversation's session (`-` outside), and the
    conversations' tool calls reached the server interleaved."""
    found = [match for line in lines if (match := _LOG_LINE.fullmatch(line))]
    assert len(found) == 3 * (turns + 2)
    for match in found:
        expected = Seen("", match["label"], None).conversation or "-"
        assert match["session"] == expected, match.string
    order = [m["label"].split(".")[0] for m in found if m["kind"] == "tool"]
    changes = sum(1 for before, after in zip(order, order[1:], strict=False) if before != after)
    assert changes >= 2, f"the calls did not interleave: {order}"


def check_spans(
    spans: Sequence[Mapping[str, Any]], *, turns: int = TURNS, server_spans: bool
) -> None:
    """The span each handler started carries its conversation's `session.id` (none outside);
    with `server_spans`, so does its parent, the SDK's SERVER span for the request."""
    by_id = {span["context"]["span_id"]: span for span in spans}
    bodies = [span for span in spans if "label" in span["attributes"]]
    assert len(bodies) == 3 * (turns + 2)
    for body in bodies:
        expected = Seen("", body["attributes"]["label"], None).conversation
        assert body["attributes"].get("session.id") == expected, body
        if server_spans:
            parent = by_id[body["parent_id"]]
            assert parent["kind"] == "SpanKind.SERVER", parent
            assert parent["attributes"].get("session.id") == expected, parent
