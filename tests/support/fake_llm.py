"""An OpenAI-compatible server on 127.0.0.1 that answers every turn the same way, for the recipes.

It speaks the two APIs the OpenAI SDK calls (`POST /v1/responses`, `POST /v1/chat/completions`),
answers `You said: <the last user message>.`, and keeps the headers of every request it got, so
that a test can show what the LLM provider received (never the session id, when the allow-list
is set). No model, no network: the answer is computed from the request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.loopback import HOST


@dataclass
class FakeLLM:
    base_url: str
    """What `OPENAI_BASE_URL` takes: `http://localhost:PORT/v1`."""
    requests: list[dict[str, str]] = field(default_factory=list)
    """The headers of each request, names in lower case, in the order they came."""


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or body.get("input") or []
    if isinstance(messages, str):
        return messages
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content)
    return ""


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    usage = {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": usage,
    }


def _response(body: dict[str, Any], text: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    return {
        "id": "resp-1",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": body["model"],
        "output": [
            {
                "type": "message",
                "id": "msg-1",
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 12,
            "output_tokens": 6,
            "total_tokens": 18,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    """Serve on a free 127.0.0.1 port until the block exits; yield where it is and what it got."""
    llm = FakeLLM("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            llm.requests.append({name.lower(): value for name, value in self.headers.items()})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            text = f"You said: {_last_user_text(body)}."
            if self.path.endswith("/chat/completions"):
                answer = _completion(body, text)
            elif self.path.endswith("/responses"):
                answer = _response(body, text)
            else:
                self.send_error(404)
                return
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    # `localhost`, not 127.0.0.1: the LLM is another host than the services the session may reach.
    llm.base_url = f"http://localhost:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield llm
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
