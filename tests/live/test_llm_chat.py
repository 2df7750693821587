"""An LLM conversation in a real backend: the FastAPI example's chat, traced into Arize Phoenix.

Each chat turn calls `mirascope.llm` (the OpenAI provider, registered with the base URL of
`tools/model_server.py` on 127.0.0.2), traced by Mirascope's ops into the example's tracer
provider, which has `SessionSpanProcessor` and exports to Phoenix over OTLP/HTTP. This is what
`make demo-phoenix` runs: three turns in one session. Phoenix must group their traces under the
session, every LLM span must carry it, and the session's turns must show their input, output and
tokens, all read back from Phoenix's own APIs. The turns' trace ids come from the service's span
file, and the tokens from what the model server answered, not from Phoenix.

Each turn also calls the MCP server example's `remember` tool over streamable HTTP, on the one
MCP connection the chat opened at startup; the MCP server exports to the same Phoenix, and each
turn's trace there must hold the tool's server span, stamped with the conversation's id.

The model server is a third party: OpenTelemetry's httpx instrumentation runs the `ops_session`
propagator on every call to it, and only the allow-list (`OPS_SESSION_OUTGOING_HOSTS=127.0.0.1`)
keeps the session id out of its requests, while our MCP server on 127.0.0.1 receives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tools.demo_phoenix import CHAT, OUR_HOSTS, PhoenixDemo, phoenix_demo
from tools.loopback import HOST, raw_request
from tools.model_server import COMPLETIONS_PATH, MODEL_HOST, completion, model_server
from tools.phoenix import Phoenix

from ops_session import SESSION_HEADER_NAME

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def demo(phoenix: Phoenix) -> Iterator[PhoenixDemo]:
    with phoenix_demo(phoenix) as started:
        yield started


def chat_trace_ids(demo: PhoenixDemo) -> list[str]:
    """The turns' trace ids, from the `POST /chat/turn` server spans in the service's span file."""
    return [
        span["context"]["trace_id"][2:]
        for span in demo.chat_app.spans()
        if span["kind"] == "SpanKind.SERVER" and span["name"] == "POST /chat/turn"
    ]


def test_phoenix_groups_the_three_turns_under_the_session(demo: PhoenixDemo) -> None:
    trace_ids = chat_trace_ids(demo)
    assert len(set(trace_ids)) == len(CHAT) == 3
    stored = demo.phoenix.session(demo.session_id)
    assert stored is not None
    assert [trace["trace_id"] for trace in stored["traces"]] == trace_ids


def test_every_llm_span_carries_the_session(demo: PhoenixDemo) -> None:
    for trace_id in chat_trace_ids(demo):
        spans = demo.phoenix.spans(trace_id)
        (llm_span,) = [span for span in spans if span["span_kind"] == "LLM"]
        assert llm_span["name"] == "chat openai/gpt-4o-mini:completions"
        assert llm_span["attributes"]["session.id"] == demo.session_id
        assert llm_span["attributes"]["mirascope.ops.session.id"] == demo.session_id
        assert {span["attributes"].get("session.id") for span in spans} == {demo.session_id}


def test_each_turn_shows_the_mcp_tool_call_in_its_trace(demo: PhoenixDemo) -> None:
    """Phoenix holds the MCP server's `tools/call remember` span inside each turn's trace,
    below the turn's root span and stamped with the conversation's id."""
    for trace_id in chat_trace_ids(demo):
        spans = demo.phoenix.spans(trace_id)
        tool_spans = [span for span in spans if span["name"] == "tools/call remember"]
        assert len(tool_spans) == 1, f"Phoenix holds {len(tool_spans)} tool spans in {trace_id}"
        (tool_span,) = tool_spans
        assert tool_span["attributes"]["session.id"] == demo.session_id
        assert tool_span["attributes"]["mcp.method.name"] == "tools/call"
        assert tool_span["attributes"]["gen_ai.tool.name"] == "remember"
        above = [span["name"] for span in ancestors(tool_span, spans)]
        assert (above[0], above[-1]) == ("MCP send tools/call remember", "POST /chat/turn")
    # The MCP server exported one tool span per turn, a server span in that turn's trace.
    tool_spans = [span for span in demo.mcp_server.spans() if span["name"] == "tools/call remember"]
    assert sorted(span["context"]["trace_id"][2:] for span in tool_spans) == sorted(
        chat_trace_ids(demo)
    )
    assert all(span["kind"] == "SpanKind.SERVER" for span in tool_spans)
    # The tool filed each turn's message under the conversation's id: one note more per turn.
    notes = [line for line in demo.mcp_server.log_lines() if " kept" in line]
    assert [line.split(" session=")[1].split(" ")[0] for line in notes] == [demo.session_id] * 3
    assert [line.rsplit(": ", 1)[1] for line in notes] == [f"note {n} kept" for n in (1, 2, 3)]


def ancestors(span: dict[str, Any], spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans above `span` in its trace, nearest first, as Phoenix links them."""
    by_id = {candidate["context"]["span_id"]: candidate for candidate in spans}
    found: list[dict[str, Any]] = []
    while (parent := by_id.get(span["parent_id"])) is not None and len(found) < len(spans):
        found.append(parent)
        span = parent
    assert span["parent_id"] is None, "every span's parent is stored in Phoenix"
    return found


def test_the_session_turns_show_their_input_output_and_tokens(demo: PhoenixDemo) -> None:
    requests = [request.body for request in demo.model.received]
    assert len(requests) == len(CHAT)
    # Each call carried the conversation so far: the model saw every earlier turn.
    assert [len(body["messages"]) for body in requests] == [1, 3, 5]
    usage = [completion(body)["usage"] for body in requests]
    for number, reply in enumerate(demo.replies, start=1):
        assert f"message {number} of yours" in reply

    stored = demo.phoenix.session(demo.session_id)
    assert stored is not None
    turns = demo.phoenix.session_turns(stored)
    assert [turn.trace_id for turn in turns] == chat_trace_ids(demo)
    assert [turn.input for turn in turns] == CHAT
    assert [turn.output for turn in turns] == demo.replies
    assert [turn.tokens for turn in turns] == [counts["total_tokens"] for counts in usage]
    assert all(turn.tokens > 0 for turn in turns)
    assert stored["token_count_prompt"] == sum(counts["prompt_tokens"] for counts in usage)
    assert stored["token_count_completion"] == sum(counts["completion_tokens"] for counts in usage)


def test_the_model_server_never_receives_the_session_id(demo: PhoenixDemo) -> None:
    assert MODEL_HOST != OUR_HOSTS
    assert len(demo.model.received) == len(CHAT)
    trace_ids = chat_trace_ids(demo)
    for request, trace_id in zip(demo.model.received, trace_ids, strict=True):
        names = {name.lower() for name, _ in request.headers}
        assert SESSION_HEADER_NAME.lower() not in names
        assert not [value for _, value in request.headers if demo.session_id in value]
        # The propagators ran on this call (its trace context arrived): only the allow-list
        # kept the session id out.
        assert dict(request.headers)["traceparent"].split("-")[1] == trace_id


@pytest.mark.parametrize(
    ("path", "content", "status"),
    [
        pytest.param(COMPLETIONS_PATH, b"{", 400, id="broken-json"),
        pytest.param(COMPLETIONS_PATH, b'{"messages": 7}', 400, id="messages-not-a-list"),
        pytest.param(COMPLETIONS_PATH, b'{"messages": [], "stream": true}', 400, id="streamed"),
        pytest.param("/v1/embeddings", b"{}", 404, id="other-route"),
        pytest.param(COMPLETIONS_PATH, b'{"messages": [7, {"role": 1}]}', 200, id="odd-messages"),
    ],
)
def test_the_model_server_answers_every_request_and_records_it(
    path: str, content: bytes, status: int
) -> None:
    with model_server() as model, httpx.Client(base_url=model.url, timeout=10) as client:
        response = client.post(path, content=content, headers={"X-Probe": "1"})
        assert response.status_code == status
        assert ("choices" if status == 200 else "error") in response.json()
        assert client.post(COMPLETIONS_PATH, json={"messages": []}).status_code == 200
    assert [dict(request.headers).get("X-Probe") for request in model.received] == ["1", None]


@pytest.mark.parametrize("length", [b"99999999", b"-1", b"abc"])
def test_the_model_server_refuses_a_bad_length_and_keeps_serving(length: bytes) -> None:
    with model_server(HOST) as model:
        port = int(model.url.rsplit(":", 1)[1])
        request = b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " + length
        status, _, body = raw_request(port, request + b"\r\n\r\n{}")
        assert status == 413 and b"at most" in body
        assert httpx.post(model.url + COMPLETIONS_PATH, json={"messages": []}).status_code == 200
    assert len(model.received) == 2


def test_the_chat_refuses_a_model_that_is_not_openais() -> None:
    from examples.fastapi_app.assistant import Assistant

    with pytest.raises(ValueError, match="set LLM_MODEL to an id that starts with 'openai/'"):
        Assistant("anthropic/claude-sonnet-4-5")
