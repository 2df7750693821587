"""The FastAPI, Flask and Django examples under real servers, with spans and log lines in files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import complete_lines
from .loopback import HOST, free_port, gunicorn_command, running, uvicorn_command
from .queue_workers import celery_command, worker

DEMO_PROPAGATORS = "tracecontext,baggage,ops_session"
FASTAPI_APP = "examples.fastapi_app.app:app"
FLASK_APP = "examples.flask_app.app:app"
MCP_SERVER = "examples.mcp_server.app:app"


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
    broker_url: str | None = None,
    otlp_endpoint: str | None = None,
    fastapi_app_target: str = FASTAPI_APP,
    flask_app_target: str = FLASK_APP,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[ExampleService, ExampleService, ExampleService]]:
    """Run the Django example and the Flask example that calls it (both gunicorn), and the
    FastAPI example that calls Flask (uvicorn).

    Yields `(fastapi_app, flask_app, django_app)`. Their spans and log lines go to files in
    `directory`, and with `otlp_endpoint` also to that OTLP/HTTP endpoint (such as Phoenix's), in
    batches sent every 200 ms. `broker_url` is the Redis the FastAPI example's `/task` publishes
    Celery tasks to. The targets name other apps built the same way (`module:attribute`); `env`
    adds environment variables to every service.
    """
    django_app, flask_app, fastapi_app = (
        ExampleService(free_port(), directory / f"{name}.spans.jsonl", directory / f"{name}.log")
        for name in ("django_app", "flask_app", "fastapi_app")
    )
    django_command = gunicorn_command("examples.django_app.wsgi:application", django_app.port)
    flask_command = gunicorn_command(flask_app_target, flask_app.port)
    fastapi_command = uvicorn_command(fastapi_app_target, fastapi_app.port)
    django_env = {**_telemetry_env(django_app, propagators, otlp_endpoint), **(env or {})}
    with running(django_command, django_app.port, env=django_env):
        flask_env = {
            **_telemetry_env(flask_app, propagators, otlp_endpoint),
            "DJANGO_APP_URL": django_app.url,
            **(env or {}),
        }
        with running(flask_command, flask_app.port, env=flask_env):
            fastapi_env = {
                **_telemetry_env(fastapi_app, propagators, otlp_endpoint),
                "FLASK_APP_URL": flask_app.url,
                **(env or {}),
            }
            if broker_url is not None:
                fastapi_env["CELERY_BROKER_URL"] = broker_url
            with running(fastapi_command, fastapi_app.port, env=fastapi_env):
                yield fastapi_app, flask_app, django_app


@contextmanager
def fastapi_example(
    directory: Path, *, otlp_endpoint: str | None = None, env: dict[str, str] | None = None
) -> Iterator[ExampleService]:
    """Run the FastAPI example alone under uvicorn, as its chat page needs nothing else.

    With `otlp_endpoint`, its spans also go there; `env` adds environment variables.
    """
    example = ExampleService(
        free_port(), directory / "fastapi_app.spans.jsonl", directory / "fastapi_app.log"
    )
    command = uvicorn_command(FASTAPI_APP, example.port)
    example_env = {**_telemetry_env(example, DEMO_PROPAGATORS, otlp_endpoint), **(env or {})}
    with running(command, example.port, env=example_env):
        yield example


@contextmanager
def mcp_example(directory: Path, *, otlp_endpoint: str | None = None) -> Iterator[ExampleService]:
    """Run the MCP server example under uvicorn; its endpoint is `mcp_endpoint(service)`.

    With `otlp_endpoint`, its spans also go there.
    """
    example = ExampleService(
        free_port(), directory / "mcp_server.spans.jsonl", directory / "mcp_server.log"
    )
    command = uvicorn_command(MCP_SERVER, example.port)
    with running(
        command, example.port, env=_telemetry_env(example, DEMO_PROPAGATORS, otlp_endpoint)
    ):
        yield example


def mcp_endpoint(service: ExampleService) -> str:
    """The streamable HTTP endpoint of the MCP server example that `service` runs."""
    return f"{service.url}/mcp"


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
    service: ExampleService, propagators: str, otlp_endpoint: str | None = None
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
    return complete_lines(path)


@contextmanager
def example_worker(directory: Path, broker_url: str) -> Iterator[ExampleService]:
    """Run the Celery worker example (solo pool) on `broker_url`; its spans and logs go to files.

    The worker listens on no port: the yielded service's `port` is 0.
    """
    service = ExampleService(0, directory / "worker.spans.jsonl", directory / "worker.log")
    command = celery_command("examples.worker.tasks", pool="solo")
    env = {**_telemetry_env(service, DEMO_PROPAGATORS), "CELERY_BROKER_URL": broker_url}
    with worker(command, directory / "worker.out", env=env):
        yield service


def wait_for_spans(
    service: ExampleService, trace_id: str, *, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The spans of a trace that `service` exported, once there are any."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in service.spans() if s["context"]["trace_id"] == f"0x{trace_id}"]
        if spans:
            return spans
        if time.monotonic() > deadline:
            raise TimeoutError(f"no span of trace {trace_id} was exported")
        time.sleep(0.05)
