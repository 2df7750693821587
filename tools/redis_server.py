"""Run Debian's `redis-server` on a free loopback port, with persistence off, for tests and demos.

The server lives in a temporary directory and is stopped by process id when the block exits.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .loopback import HOST, free_port, started

INSTALL_HINT = "apt-get install redis-server"


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextmanager
def redis_server() -> Iterator[str]:
    """Run a private Redis until the block exits; yield its URL (`redis://127.0.0.1:PORT`)."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError(f"redis-server is not on PATH: install it with `{INSTALL_HINT}`.")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ops-session-redis-") as directory:
        command = [
            executable, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", directory, "--protected-mode", "yes", "--loglevel", "warning",
        ]  # fmt: skip
        with started(command, port):
            _wait_for_pong(port)
            yield f"redis://{HOST}:{port}"


def _wait_for_pong(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server on port {port} did not answer PING")
        time.sleep(0.05)
