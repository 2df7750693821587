"""Every Python block of the README runs as pasted and passes mypy strict; shell blocks run too.

Each block runs in a fresh interpreter, so that what it configures (a global tracer provider, a
log record factory) stays out of the other tests. The zero-code shell block runs in a fresh
virtualenv, against a real server on 127.0.0.1; `tests/live/test_walkthrough.py` runs the
walkthrough's.
"""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tools.loopback import HOST, ROOT, free_port

from ops_session import SESSION_HEADER_NAME

from .support.markdown import CodeBlock, code_blocks

EXAMPLES = code_blocks("python")


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_readme_block_runs_as_pasted(example: CodeBlock) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", example.source], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr


def test_readme_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    assert len(EXAMPLES) >= 8
    for number, example in enumerate(EXAMPLES):
        (tmp_path / f"block_{number}.py").write_text(example.source, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


ZERO_CODE_APP = """\
import logging

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("app")


@app.get("/hello")
def hello() -> dict[str, str]:
    log.warning("hello from the app")
    return {"hello": "world"}
"""
"""An app with no ops-session code, as `opentelemetry-instrument uvicorn app:app` expects it."""


def zero_code_block() -> CodeBlock:
    (block,) = [
        b for b in code_blocks("sh") if "opentelemetry-instrument uvicorn app:app" in b.source
    ]
    return block


@pytest.mark.servers
def test_the_zero_code_commands_work_as_pasted(wheel: Path, tmp_path: Path) -> None:
    """Issue 27, point 20: the block's install and command, in a fresh virtualenv, as pasted.

    The only changes are the port (uvicorn's `UVICORN_PORT`, a free one instead of 8000) and
    where `ops-session` comes from (this tree's wheel, installed first, so that the block's
    `pip install 'ops-session[otel]'` adds its extra). The app's own `fastapi` and `uvicorn` are
    installed beforehand, as they are where a team runs the command.
    """
    block = zero_code_block()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, str(wheel), "fastapi", "uvicorn"], check=True, timeout=300)
    (tmp_path / "app.py").write_text(ZERO_CODE_APP, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "UVICORN_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    for name in [name for name in env if name.startswith(("OTEL_", "OPS_SESSION_"))]:
        del env[name]  # only what the block sets
    output = tmp_path / "output"
    with output.open("wb") as log:
        process = subprocess.Popen(
            ["bash", "-e", "-c", block.source],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the shell, pip, uvicorn
        )
        try:
            wait_until_listening(process, port, output)
            response = httpx.get(
                f"http://{HOST}:{port}/hello", headers={SESSION_HEADER_NAME: "readme-1"}
            )
            assert response.headers.get(SESSION_HEADER_NAME) == "readme-1", read(output)
            # The console exporter prints the server span; the log line carries the session.
            wait_for(lambda: '"session.id": "readme-1"' in read(output), output)
            wait_for(lambda: "readme-1 hello from the app" in read(output), output)
        finally:
            stop_group(process)


def read(output: Path) -> str:
    return output.read_text(encoding="utf-8", errors="replace")


def wait_until_listening(process: subprocess.Popen[bytes], port: int, output: Path) -> None:
    deadline = time.monotonic() + 300  # the block's own pip install runs first
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the block stopped:\n{read(output)}"
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the block did not start a server:\n{read(output)}")


def wait_for(condition: Callable[[], bool], output: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not seen in the output:\n{read(output)}"
        time.sleep(0.1)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the block's process group (by its leader's id), killing it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# Each shell block's commands, but pip lines, and the test that runs them.
SHELL_BLOCKS_RUN_BY = {
    "opentelemetry-instrument uvicorn app:app": "tests/test_readme.py",
    "gunicorn orders:app": "tests/live/test_walkthrough.py",
    "rq worker --job-class ops_session.rq.SessionJob": "tests/live/test_rq.py",
    "make demo": "Makefile",
}
# Blocks that show an exchange rather than a command to run, and why no test runs them.
SHELL_BLOCKS_NOT_RUN = {
    "http://127.0.0.1:8000/whoami": "shows the answer of the Django views above, whose behaviour "
    "tests/live/test_django.py checks on its own project",
}


def test_every_shell_block_is_run_or_installs_what_the_tests_install() -> None:
    """A pip line names our extras and packages the tests install; any other block is run."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for block in code_blocks("sh"):
        lines = [line for line in block.source.replace("\\\n", " ").splitlines() if line]
        for line in [line for line in lines if line.startswith("pip install ")]:
            for word in shlex.split(line)[2:]:
                name, _, extra = word.rstrip("]").partition("[")
                if name == "ops-session":
                    assert set(extra.split(",")) - {""} <= set(extras), block
                else:
                    assert importlib.metadata.version(name), block
        if all(line.startswith(("pip install ", "#")) for line in lines):
            continue
        known = {**SHELL_BLOCKS_RUN_BY, **SHELL_BLOCKS_NOT_RUN}
        runners = [path for marker, path in known.items() if marker in block.source]
        assert len(runners) == 1, f"{block} is run by no test: add one to SHELL_BLOCKS_RUN_BY"
