"""Start real servers on 127.0.0.1 ephemeral ports, and stop them by process id.

Shared by the tests, the benchmarks and `make demo`; it imports none of them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Under opentelemetry-instrument every installed instrumentor loads at start: with
# mirascope[ops]'s OpenAI, Anthropic and Google SDKs that is about 8 s of CPU on this machine.
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def uvicorn_command(target: str, port: int, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", target, *options,
        "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def gunicorn_command(target: str, port: int, *options: str, threads: int = 8) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", target, *options,
        "--bind", f"{HOST}:{port}", "--workers", "1",
        "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning",
    ]  # fmt: skip


@contextmanager
def running(
    command: list[str],
    port: int,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    output: Path | None = None,
) -> Iterator[str]:
    """Run `command` until the block exits; yield its base URL once it accepts connections."""
    with started(command, port, env=env, cwd=cwd, output=output):
        yield f"http://{HOST}:{port}"


@contextmanager
def started(
    command: list[str],
    port: int,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    output: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until the block exits; yield its process once the port accepts connections.

    The process runs in `cwd` (default: the repository) with the repository on `PYTHONPATH`;
    its standard output and error go to `output` when given, to a temporary file otherwise.
    """
    with ExitStack() as stack:
        log: IO[bytes] = (
            stack.enter_context(output.open("w+b"))
            if output is not None
            else stack.enter_context(tempfile.TemporaryFile())
        )
        process = subprocess.Popen(
            command,
            cwd=cwd or ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(cwd or ROOT), str(ROOT)])),
                **(env or {}),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_listening(process, port, log)
            yield process
        finally:
            stop(process)


def pythonpath_with(*packages: ModuleType) -> str:
    """A `PYTHONPATH` on which a child imports the repository's modules, and each of `packages`
    from where this process imported it (a checkout's `src` may come before an installed copy),
    so that the child runs the same code as this process."""
    sources = []
    for package in packages:
        assert package.__file__ is not None, package
        sources.append(str(Path(package.__file__).resolve().parent.parent))
    return os.pathsep.join(dict.fromkeys([str(ROOT), *sources]))


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
