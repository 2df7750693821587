"""Arize Phoenix on 127.0.0.1, run from its own virtualenv, and a client for its REST API.

Shared by the live tests, `make demo-phoenix` and the screenshot script. `make phoenix-venv`
installs Phoenix into `.venv-phoenix`: its pins never meet ours. Each run gets free ports and a
temporary working directory, so its SQLite database starts empty and is removed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .loopback import HOST, ROOT, free_port, stop

PHOENIX_COMMAND = ROOT / ".venv-phoenix" / "bin" / "phoenix"
PROJECT = "default"  # where Phoenix puts spans whose resource names no project
STARTUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Phoenix:
    """A running Phoenix: its base URL, where to export spans, and what its REST API holds."""

    url: str

    @property
    def traces_endpoint(self) -> str:
        """The OTLP/HTTP endpoint for `OTLPSpanExporter(endpoint=...)`."""
        return f"{self.url}/v1/traces"

    def get(self, path: str, **query: str | list[str]) -> Any:
        """GET a REST API path; the decoded JSON, or `None` when Phoenix answers 404."""
        address = f"{self.url}{path}"
        if query:
            address += "?" + urllib.parse.urlencode(query, doseq=True)
        try:
            with urllib.request.urlopen(address, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def session(self, session_id: str) -> dict[str, Any] | None:
        """The session with this `session.id` (with its traces), or `None` when Phoenix has none."""
        body = self.get(f"/v1/sessions/{urllib.parse.quote(session_id, safe='')}")
        return None if body is None else dict(body["data"])

    def spans(self, trace_id: str, *, roots_only: bool = False) -> list[dict[str, Any]]:
        """The spans of one trace that Phoenix has stored (only its root spans if asked)."""
        query: dict[str, str | list[str]] = {"trace_id": [trace_id], "limit": "1000"}
        if roots_only:
            query["parent_id"] = "null"
        return list(self.get(f"/v1/projects/{PROJECT}/spans", **query)["data"])

    def session_page(self, session: dict[str, Any]) -> str:
        """The address of a session's page in Phoenix's UI."""
        return f"{self.url}/projects/{session['project_id']}/sessions/{session['id']}"

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of a GraphQL query, the API Phoenix's own pages read."""
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        if body.get("errors"):
            raise RuntimeError(f"Phoenix answered the GraphQL query with {body['errors']!r}")
        return dict(body["data"])

    def session_turns(self, session: dict[str, Any]) -> list[Turn]:
        """A session's turns as its page in Phoenix shows them, oldest first."""
        node = self.graphql(SESSION_TURNS_QUERY, id=session["id"])["node"]
        return [_turn(edge["node"]) for edge in node["traces"]["edges"]]


@dataclass(frozen=True)
class Turn:
    """One turn of a session in Phoenix: one trace, shown from its root span."""

    trace_id: str
    input: str | None
    """The root span's `input.value`; `None` when it has none (the page shows "--")."""
    output: str | None
    tokens: int
    """The tokens of every LLM span in the trace, which Phoenix adds up on the root span."""


# The fields of a session's turns that the session page reads (its `SessionDetailsTraceList`
# fragment in Phoenix 20): each trace's root span, its input, output and cumulative token count.
SESSION_TURNS_QUERY = """
query SessionTurns($id: ID!) {
  node(id: $id) {
    ... on ProjectSession {
      traces(first: 100) {
        edges {
          node {
            traceId
            rootSpan {
              input { value }
              output { value }
              cumulativeTokenCountTotal
            }
          }
        }
      }
    }
  }
}
"""


def _turn(trace: dict[str, Any]) -> Turn:
    root = trace["rootSpan"] or {}
    return Turn(
        trace_id=trace["traceId"],
        input=(root.get("input") or {}).get("value"),
        output=(root.get("output") or {}).get("value"),
        tokens=int(root.get("cumulativeTokenCountTotal") or 0),
    )


def wait_for(
    probe: Any, *, timeout: float = 30.0, interval: float = 0.25, what: str = "Phoenix"
) -> Any:
    """Call `probe()` until it returns something truthy (Phoenix ingests in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not show up within {timeout} s")
        time.sleep(interval)


@contextmanager
def running_phoenix() -> Iterator[Phoenix]:
    """Run `phoenix serve` on free loopback ports until the block exits, then stop it by pid."""
    if not PHOENIX_COMMAND.exists():
        raise RuntimeError(f"{PHOENIX_COMMAND} is missing: run `make phoenix-venv` first.")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="phoenix-") as working_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PHOENIX_", "OTEL_", "PYTHON", "VIRTUAL_ENV"))
        }
        env.update(
            PHOENIX_HOST=HOST,
            PHOENIX_PORT=str(port),
            PHOENIX_GRPC_PORT=str(free_port()),
            PHOENIX_WORKING_DIR=working_dir,
            PHOENIX_TELEMETRY_ENABLED="false",
        )
        log_path = Path(working_dir) / "phoenix.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(PHOENIX_COMMAND), "serve"],
                cwd=working_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            phoenix = Phoenix(f"http://{HOST}:{port}")
            _wait_until_healthy(process, phoenix, log_path)
            yield phoenix
        finally:
            stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], phoenix: Phoenix, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{phoenix.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    stop(process)
    output = log.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"Phoenix did not become healthy at {phoenix.url}:\n{output}")
