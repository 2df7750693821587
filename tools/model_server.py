"""A small OpenAI-compatible model server: the third party that the chat example's LLM calls reach.

`POST /v1/chat/completions` answers with a deterministic completion (it repeats the last user
message and counts the user messages, so a reply shows that the history arrived) and a `usage`
block (one token per whitespace-separated word). It records the headers of every request it
receives, so tests can show what a third party learns from our calls.

It listens on 127.0.0.2, another loopback address (Linux routes 127.0.0.0/8 to the loopback
interface): an outgoing allow-list naming 127.0.0.1, where our own services run, leaves it out.
Stdlib only; it serves from a thread of the process that starts it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_HOST = "127.0.0.2"
COMPLETIONS_PATH = "/v1/chat/completions"
MAX_BODY = 1 << 20
CREATED = 1_767_225_600  # a fixed `created` time keeps every answer the same for the same request


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the model server received it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    """Every header line, in order, with names as sent."""
    body: Any


@dataclass
class ModelServer:
    """A running model server: its addresses and the requests it received so far."""

    url: str
    received: list[ReceivedRequest] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completion answering a request body (`model` and `messages`)."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    user_texts = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    last = user_texts[-1] if user_texts else ""
    reply = f"You said {last!r}. That is message {len(user_texts)} of yours in this conversation."
    prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
    completion_tokens = len(reply.split())
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    return {
        "id": f"chatcmpl-{digest}",
        "object": "chat.completion",
        "created": CREATED,
        "model": str(body.get("model", "")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


@contextmanager
def model_server(host: str = MODEL_HOST, port: int = 0) -> Iterator[ModelServer]:
    """Serve on `host` (an ephemeral port by default) until the block exits."""
    server_state = ModelServer(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length_header = self.headers.get("Content-Length") or "0"
            length = int(length_header) if length_header.isdigit() else -1
            body: Any = None
            if 0 <= length <= MAX_BODY:
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    pass
            with lock:
                server_state.received.append(
                    ReceivedRequest("POST", self.path, list(self.headers.items()), body)
                )
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True  # the unread body must not pass for a request
                message = f"expected a Content-Length of at most {MAX_BODY} bytes"
                self._answer(413, {"error": {"message": message}})
            elif self.path != COMPLETIONS_PATH:
                self._answer(404, {"error": {"message": f"no route {self.path}"}})
            elif (
                not isinstance(body, dict)
                or body.get("stream")
                or not isinstance(body.get("messages"), list)
            ):
                self._answer(
                    400, {"error": {"message": "expected a JSON body with messages, not streamed"}}
                )
            else:
                self._answer(200, completion(body))

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server_state.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
