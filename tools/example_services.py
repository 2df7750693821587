"""The FastAPI and Flask examples under real servers, with their spans and log lines in files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .loopback import HOST, free_port, gunicorn_command, running, uvicorn_command

DEMO_PROPAGATORS = "tracecontext,baggage,ops_session"
FASTAPI_APP = "examples.fastapi_app.app:app"
FLASK_APP = "examples.flask_app.app:app"


@dataclass(frozen=True)
class ExampleService:
    """An example service under a real server, and the files it writes its spans and logs to."""

    port: int
    spans_file: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def spans(self) -> list[dict[str, Any]]:
        """Every span exported so far, as the JSON objects OpenTelemetry's `to_json` makes."""
        return [json.loads(line) for line in _lines(self.spans_file)]

    def log_lines(self) -> list[str]:
        return _lines(self.log_file)


@contextmanager
def example_services(
    directory: Path,
    *,
    propagators: str = DEMO_PROPAGATORS,
    otlp_endpoint: str | None = None,
    fastapi_app_target: str = FASTAPI_APP,
    flask_app_target: str = FLASK_APP,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[ExampleService, ExampleService]]:
    """Run the Flask example (gunicorn) and the FastAPI example that calls it (uvicorn).

    Yields `(fastapi_app, flask_app)`. Their spans and log lines go to files in `directory`, and
    with `otlp_endpoint` also to that OTLP/HTTP endpoint (such as Phoenix's), in batches sent
    every 200 ms. The targets name other apps built the same way (`module:attribute`); `env`
    adds environment variables to both.
    """
    flask_app, fastapi_app = (
        ExampleService(free_port(), directory / f"{name}.spans.jsonl", directory / f"{name}.log")
        for name in ("flask_app", "fastapi_app")
    )
    flask_command = gunicorn_command(flask_app_target, flask_app.port)
    fastapi_command = uvicorn_command(fastapi_app_target, fastapi_app.port)
    flask_env = {**_telemetry_env(flask_app, propagators, otlp_endpoint), **(env or {})}
    with running(flask_command, flask_app.port, env=flask_env):
        fastapi_env = {
            **_telemetry_env(fastapi_app, propagators, otlp_endpoint),
            "FLASK_APP_URL": flask_app.url,
            **(env or {}),
        }
        with running(fastapi_command, fastapi_app.port, env=fastapi_env):
            yield fastapi_app, flask_app


def wait_for_trace(
    services: Sequence[ExampleService], trace_id: str, *, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Every span of a trace from all `services`, once each one's server span has been exported."""
    deadline = time.monotonic() + timeout
    while True:
        per_service = [
            [span for span in service.spans() if span["context"]["trace_id"] == f"0x{trace_id}"]
            for service in services
        ]
        if all(any(s["kind"] == "SpanKind.SERVER" for s in spans) for spans in per_service):
            return [span for spans in per_service for span in spans]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server spans of trace {trace_id} were not all exported")
        time.sleep(0.05)


def _telemetry_env(
    service: ExampleService, propagators: str, otlp_endpoint: str | None
) -> dict[str, str]:
    env = {
        "SPANS_FILE": str(service.spans_file),
        "LOG_FILE": str(service.log_file),
        "OTEL_PROPAGATORS": propagators,
    }
    if otlp_endpoint is not None:
        env.update(OTLP_ENDPOINT=otlp_endpoint, OTEL_BSP_SCHEDULE_DELAY="200")
    return env


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
