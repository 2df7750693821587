"""Where a server's time goes under load: py-spy samples, and ops-session's share of them.

The server runs the app behind ops-session on CPU 0 while wrk loads it from CPU 1; py-spy
samples the Python stacks of the server and its workers. A sample counts as ops-session's when
an ops-session frame is at the top of the stack, which includes the C functions it calls (the
regular expression, the ContextVar), but not the app or the server that it calls in turn.

A sample without any Python frame is a thread py-spy found running whose Python stack it could
not read: granian runs the app from threads of its Rust runtime, and most of its samples are so.
When most samples are frameless, the profile is blind and gives no share of the server's time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tools.loopback import HOST, free_port

from .load import LoadTarget, Server, serving, start_wrk


@dataclass(frozen=True)
class Profile:
    samples: int
    own: int  # samples with an ops-session frame on top
    top: list[tuple[str, int]]  # the busiest ops-session lines
    frameless: int  # samples without a Python frame

    @property
    def share(self) -> float:
        return self.own / self.samples

    @property
    def blind(self) -> bool:
        return self.frameless * 2 > self.samples


def py_spy_available() -> bool:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) is not None


def profile_server(server: Server, target: LoadTarget, *, seconds: float = 10.0) -> Profile:
    port = free_port()
    py_spy = str(Path(sys.executable).parent / "py-spy")
    with (
        tempfile.TemporaryDirectory() as directory,
        serving(server.kind, target, port) as process,
    ):
        url = f"http://{HOST}:{port}{target.path}"
        wrk = start_wrk(url, target.headers, seconds + 4, server.connections)
        raw = Path(directory) / "profile.txt"
        subprocess.run(
            [py_spy, "record", "--pid", str(process.pid), "--subprocesses"]
            + ["--duration", f"{seconds:g}", "--rate", "200"]
            + ["--format", "raw", "--output", str(raw)],
            check=True,
            capture_output=True,
            timeout=seconds + 60,
        )
        wrk.communicate(timeout=60)
        return parse(raw.read_text())


def parse(raw: str) -> Profile:
    """Read py-spy's raw format: a stack a line, its frames joined by ";", then its count.

    With `--subprocesses`, each stack starts with one entry per process, `process <pid>:"<command
    line>"`, which is not a frame (and may name an ops_session app).
    """
    samples = own = frameless = 0
    lines: Counter[str] = Counter()
    for row in raw.splitlines():
        stack, _, count = row.rpartition(" ")
        samples += int(count)
        frames = [entry for entry in stack.split(";") if not entry.startswith("process ")]
        if not frames:
            frameless += int(count)
        elif "(ops_session/" in frames[-1]:
            own += int(count)
            lines[frames[-1]] += int(count)
    return Profile(samples, own, lines.most_common(6), frameless)
