"""The shell blocks of the documentation: what each one is, and running a page's blocks for real.

Every `sh` block is one of four kinds, decided by its commands (comments and `\\` continuations
aside):

- `install`: every command is `pip install ...`. It is checked, not run (it would change the
  environment the tests run in): `ops-session[...]` may name only extras pyproject.toml defines,
  and every other package must be one that a dependency group of pyproject.toml installs, so
  the blocks that use it run against it in `make test`.
- `repository`: every command is a development command of this repository, `make TARGET` or
  `.venv/bin/TOOL ...`: the target must be one the Makefile defines, the tool one the virtualenv
  has, and a module run with `python -m` one of the repository's (`make test` cannot run
  inside `make test`, nor `make bench` in seconds).
- `server`: one command that runs until stopped, a server or a worker (`SERVERS`, with its
  subcommand when it has one: `celery ... worker`, not `django-admin check`). It is started
  in the background, and the test waits until the ports it names listen; it runs until the
  page's blocks are done (or until a later server of the page takes its port), then it is
  stopped by process id.
- `client`: anything else. It runs in bash (`set -euo pipefail`) to its end within
  `CLIENT_TIMEOUT`, and must succeed. When the next block is a `text` block, that is what it
  printed: each line of it (`...` stands for any text; a line of only `...` for lines left out)
  must be a line of the output, in that order. A `text` block with a title (```` ```text
  title="gunicorn" ````) shows the log of the running server whose command holds the title;
  several `text` blocks may follow one client block.

A page runs in a directory of its own, where the blocks that have a title (```` ```python
title="app.py" ````) are written as files first. Commands run as pasted, with three changes a
shared machine needs: the ports the pages name (`DOCUMENTED_PORTS`) become free ones, in the
commands and in the files alike; `HOME` is that directory, so nothing (Phoenix's database,
for one) lands in the real home; and `PATH` starts with this virtualenv's `bin`, then Phoenix's.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tools.loopback import HOST, free_port, stop
from tools.phoenix import PHOENIX_COMMAND

from .markdown import CodeBlock, blocks

Kind = Literal["install", "repository", "server", "client"]

DOCUMENTED_PORTS = (8000, 8001, 8002, 6006, 4317, 6379)
"""The ports the pages use: 8000-8002 for the services, Phoenix's two, Redis's."""

SERVERS = {
    # program: (whether it listens on the ports its command names, the word that makes it run
    # until stopped); workers only connect, and `django-admin check` ends by itself
    "arq": (False, None),
    "celery": (False, "worker"),
    "django-admin": (True, "runserver"),
    "gunicorn": (True, None),
    "hypercorn": (True, None),
    "opentelemetry-instrument": (True, None),
    "phoenix": (True, "serve"),
    "python": (True, "aiohttp.web"),  # aiohttp's own server; `python script.py` is a client
    "redis-server": (True, None),
    "rq": (False, "worker"),
    "uvicorn": (True, None),
    "waitress-serve": (True, None),
}
CLIENT_TIMEOUT = 60.0
OUTPUT_TIMEOUT = 15.0
STARTUP_TIMEOUT = 120.0  # Phoenix's first start migrates its database
# Variables of the test run that would change what a pasted command does.
_CLEARED = ("OTEL_", "OPS_SESSION_", "PHOENIX_", "PYTHON", "VIRTUAL_ENV", "DJANGO_", "OPENAI_")
_PORTS = re.compile(r"(?<![\d.])(" + "|".join(map(str, DOCUMENTED_PORTS)) + r")(?!\d)")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def commands(block: CodeBlock) -> list[list[str]]:
    """The block's commands as words, one list per logical line (a `for` loop gives several)."""
    joined = block.source.replace("\\\n", " ")
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def program(words: list[str]) -> str:
    """The program a command runs, after its `NAME=value` assignments."""
    for word in words:
        if not _ASSIGNMENT.match(word):
            return word
    return ""


def kind(block: CodeBlock) -> Kind:
    found = commands(block)
    if found and all(words[:2] == ["pip", "install"] for words in found):
        return "install"
    if found and all(words[0] == "make" or words[0].startswith(".venv/") for words in found):
        return "repository"
    if len(found) == 1 and program(found[0]) in SERVERS:
        _, word = SERVERS[program(found[0])]
        if word is None or word in found[0]:
            return "server"
    return "client"


def shell_blocks(path: Path) -> list[CodeBlock]:
    return [block for block in blocks(path) if block.language == "sh"]


def output_blocks(block: CodeBlock) -> list[CodeBlock]:
    """The `text` blocks right after `block`: the output it shows, and server logs."""
    found = blocks(block.path)
    shown = []
    for after in found[found.index(block) + 1 :]:
        if after.language != "text":
            break
        shown.append(after)
    return shown


def match_output(expected: str, output: str) -> str | None:
    """Why `output` does not show the `expected` lines in order, or `None` when it does."""
    lines = [line.rstrip() for line in output.replace("\r", "").splitlines()]
    position = 0
    for wanted in expected.splitlines():
        wanted = wanted.rstrip()
        if not wanted or wanted == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("...")))
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return f"no line {wanted!r} (in order) in:\n{output}"
        position += 1
    return None


@dataclass
class Server:
    block: CodeBlock
    process: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


@dataclass
class PageRun:
    """A page's files and commands, run in `directory`; its servers run until the block ends."""

    page: Path
    directory: Path
    ports: dict[int, int]
    environment: dict[str, str]
    servers: list[Server] = field(default_factory=list)
    outputs: dict[CodeBlock, str] = field(default_factory=dict)

    def localize(self, text: str) -> str:
        """`text` with each documented port replaced by this run's."""
        return _PORTS.sub(lambda match: str(self.ports[int(match.group(1))]), text)

    def url(self, port: int) -> str:
        """The base URL of what the page runs on `port` (a documented port)."""
        return f"http://{HOST}:{self.ports[port]}"

    def server(self, fragment: str) -> Server:
        """The latest server whose command holds `fragment` (`"celery"`, `"memory:app"`)."""
        for server in reversed(self.servers):
            if fragment in server.block.source:
                return server
        raise LookupError(f"{self.page.name} starts no server with {fragment!r}")


def environment(directory: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a pasted command sees: the test run's, minus what would change it."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith(_CLEARED)}
    path = [str(Path(sys.executable).parent), str(PHOENIX_COMMAND.parent), kept.get("PATH", "")]
    return {
        **kept,
        "HOME": str(directory),
        "PATH": os.pathsep.join(path),
        "PYTHONUNBUFFERED": "1",  # so that the tests read log lines as they are written
        **(extra or {}),
    }


@contextmanager
def run_page(page: Path, directory: Path, env: dict[str, str] | None = None) -> Iterator[PageRun]:
    """Write the page's files, then run its shell blocks in order; stop its servers at the end.

    A server whose port an earlier server of the page holds replaces it: the earlier one is
    stopped first (a page that shows a command, then the same one with more options). `env`
    adds variables the reader is told to set (an API key, where the LLM is).
    """
    run = PageRun(page, directory, {port: free_port() for port in DOCUMENTED_PORTS}, {})
    run.environment = environment(directory, env)
    for block in blocks(page):
        if block.title and block.language != "text":
            target = directory / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(run.localize(block.source), encoding="utf-8")
    running: list[Server] = []
    try:
        for block in shell_blocks(page):
            what = kind(block)
            if what == "server":
                ports = _ports(block)
                for earlier in [server for server in running if ports & _ports(server.block)]:
                    running.remove(earlier)
                    _stop(earlier)
                server = _serve(run, block)
                running.append(server)
                run.servers.append(server)
            elif what == "client":
                run.outputs[block] = _run_client(run, block)
        yield run
        for server in running:
            if server.process.poll() is not None:
                raise AssertionError(f"{server.block} stopped early:\n{server.text()[-4000:]}")
    finally:
        for server in reversed(running):
            _stop(server)


def _ports(block: CodeBlock) -> set[int]:
    """The documented ports a server command listens on (a worker's only connect)."""
    listens, _ = SERVERS[program(commands(block)[0])]
    if not listens:
        return set()
    return {int(port) for port in _PORTS.findall(block.source)}


def _serve(run: PageRun, block: CodeBlock) -> Server:
    [words] = commands(block)
    words = [run.localize(word) for word in words]
    count = next(i for i, word in enumerate(words) if not _ASSIGNMENT.match(word))
    assignments = dict(word.split("=", 1) for word in words[:count])
    output = run.directory / f"{len(run.servers)}-{program(words)}.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            words[count:],
            cwd=run.directory,
            env={**run.environment, **assignments},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(block, process, output)
    try:
        for port in sorted(_ports(block)):
            _wait_until_listening(server, run.ports[port])
    except BaseException:
        _stop(server)
        raise
    return server


def _stop(server: Server) -> None:
    stop(server.process)


def _wait_until_listening(server: Server, port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while server.process.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(
        f"{server.block}: nothing listens on port {port}:\n{server.text()[-4000:]}"
    )


def _run_client(run: PageRun, block: CodeBlock) -> str:
    # A session of its own, so that a command left hanging (a curl, a script) is ended with
    # its shell when the time is up.
    process = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + run.localize(block.source)],
        cwd=run.directory,
        env=run.environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"{block} did not finish in {CLIENT_TIMEOUT} s:\n{output}") from None
    assert process.returncode == 0, (
        f"{block} failed ({process.returncode}):\n{output}\n{_servers(run)}"
    )
    for expected in output_blocks(block):
        _check_output(run, block, expected, output)
    return output


def _check_output(run: PageRun, block: CodeBlock, expected: CodeBlock, output: str) -> None:
    """The client's output, or the log of the server the `text` block's title names."""
    wanted = run.localize(expected.source)
    if expected.title is None:
        mismatch = match_output(wanted, output)
    else:
        server = run.server(expected.title)
        deadline = time.monotonic() + OUTPUT_TIMEOUT  # servers write their logs a bit later
        while (mismatch := match_output(wanted, server.text())) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert mismatch is None, f"{expected} after {block}: {mismatch}\n{_servers(run)}"


def _servers(run: PageRun) -> str:
    return "\n".join(f"--- {server.block}:\n{server.text()[-3000:]}" for server in run.servers)
