"""Run real queue workers (Celery, RQ, arq) as subprocesses, and stop them by process id.

Shared by the job tests and `make demo`; a worker listens on no port, so callers wait for it by
sending it work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .loopback import ROOT, stop


def celery_command(app: str, *, pool: str, concurrency: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", app, "worker", f"--pool={pool}",
        f"--concurrency={concurrency}", "--loglevel=WARNING", "--without-heartbeat",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def rq_command(redis_url: str, queue: str, *, worker_class: str) -> list[str]:
    """An `rq worker` in burst mode: it works off the queue, then exits."""
    return [
        sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url,
        "--job-class", "ops_session.rq.SessionJob", "--worker-class", worker_class,
        "--logging_level", "WARNING", queue,
    ]  # fmt: skip


def arq_command(settings: str) -> list[str]:
    """An arq worker in burst mode: it works off the queue, then exits."""
    return [sys.executable, "-m", "arq", "--burst", settings]


@contextmanager
def worker(
    command: list[str], output: Path, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until the block exits, its output going to `output`."""
    with output.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            stop(process)


def run_to_completion(
    command: list[str], output: Path, *, env: dict[str, str] | None = None, timeout: float = 120
) -> None:
    """Run a burst-mode worker until it exits by itself; raise if it fails or overruns."""
    with worker(command, output, env=env) as process:
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.returncode != 0:
            text = output.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{command!r} ended with {process.returncode}:\n{text}")
