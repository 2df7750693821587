"""Where a server's time goes under load: py-spy samples, and ops-session's share of them.

The server runs the app behind ops-session on CPU 0 while wrk loads it from CPU 1; py-spy
samples the Python stacks of the server and its workers. A sample counts as ops-session's when
an ops-session frame is at the top of the stack, which includes the C functions it calls (the
regular expression, the ContextVar), but not the app or the server that it calls in turn.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tools.loopback import free_port, started

from .load import LoadTarget, server_command, start_wrk


@dataclass(frozen=True)
class Profile:
    samples: int
    own: int  # samples with an ops-session frame on top
    top: list[tuple[str, int]]  # the busiest ops-session lines

    @property
    def share(self) -> float:
        return self.own / self.samples


def py_spy_available() -> bool:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) is not None


def profile_server(target: LoadTarget, *, connections: int, seconds: float = 10.0) -> Profile:
    port = free_port()
    py_spy = str(Path(sys.executable).parent / "py-spy")
    with (
        tempfile.TemporaryDirectory() as directory,
        started(server_command(target, port), port) as server,
    ):
        wrk = start_wrk(f"http://127.0.0.1:{port}/", target.headers, seconds + 4, connections)
        raw = Path(directory) / "profile.txt"
        subprocess.run(
            [py_spy, "record", "--pid", str(server.pid), "--subprocesses"]
            + ["--duration", f"{seconds:g}", "--rate", "200"]
            + ["--format", "raw", "--output", str(raw)],
            check=True,
            capture_output=True,
            timeout=seconds + 60,
        )
        wrk.communicate(timeout=60)
        return parse(raw.read_text())


def parse(raw: str) -> Profile:
    samples = own = 0
    lines: Counter[str] = Counter()
    for row in raw.splitlines():
        stack, _, count = row.rpartition(" ")
        samples += int(count)
        leaf = stack.split(";")[-1]
        if "ops_session" in leaf:
            own += int(count)
            lines[leaf] += int(count)
    return Profile(samples, own, lines.most_common(6))
