"""Start real servers on 127.0.0.1 ephemeral ports for the tests, and stop them by process id."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def uvicorn_command(target: str, port: int, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", target, *options,
        "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def gunicorn_command(target: str, port: int, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", target, *options,
        "--bind", f"{HOST}:{port}", "--workers", "1",
        "--worker-class", "gthread", "--threads", "8", "--log-level", "warning",
    ]  # fmt: skip


DEMO_PROPAGATORS = "tracecontext,baggage,ops_session"


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
    directory: Path, *, propagators: str = DEMO_PROPAGATORS
) -> Iterator[tuple[ExampleService, ExampleService]]:
    """Run the Flask example (gunicorn) and the FastAPI example that calls it (uvicorn).

    Yields `(fastapi_app, flask_app)`. Their spans and log lines go to files in `directory`.
    """
    flask_app, fastapi_app = (
        ExampleService(free_port(), directory / f"{name}.spans.jsonl", directory / f"{name}.log")
        for name in ("flask_app", "fastapi_app")
    )
    flask_command = gunicorn_command("examples.flask_app.app:app", flask_app.port)
    fastapi_command = uvicorn_command("examples.fastapi_app.app:app", fastapi_app.port)
    with running(flask_command, flask_app.port, env=_telemetry_env(flask_app, propagators)):
        fastapi_env = {**_telemetry_env(fastapi_app, propagators), "FLASK_APP_URL": flask_app.url}
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


def _telemetry_env(service: ExampleService, propagators: str) -> dict[str, str]:
    return {
        "SPANS_FILE": str(service.spans_file),
        "LOG_FILE": str(service.log_file),
        "OTEL_PROPAGATORS": propagators,
    }


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@contextmanager
def running(command: list[str], port: int, *, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `command` until the block exits; yield its base URL once it accepts connections."""
    with started(command, port, env=env):
        yield f"http://{HOST}:{port}"


@contextmanager
def started(
    command: list[str], port: int, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until the block exits; yield its process once the port accepts connections."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_listening(process, port, log)
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    stop(process)
    log.seek(0)
    output = log.read().decode(errors="replace")
    raise RuntimeError(f"{process.args!r} did not start on port {port}:\n{output}")


def raw_request(
    port: int, request: bytes, *, timeout: float = 10.0
) -> tuple[int, dict[str, list[str]], bytes]:
    """Send bytes as they are and parse the response: for what HTTP clients refuse to send."""
    with socket.create_connection((HOST, port), timeout=timeout) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(status_line.split()[1]), headers, body
