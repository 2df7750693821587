"""Real servers on 127.0.0.1 under wrk: each configuration's throughput beside another's.

The servers run on CPU 0 and wrk on CPU 1. Every server is started here and stopped by process
id at the end; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE, STDOUT, Popen

from tools.loopback import HOST, free_port, pythonpath_with, started, uvicorn_command

import ops_session
from ops_session import SESSION_HEADER_NAME

from . import heap_layout
from .asgi_apps import VALID_ID
from .django_apps import HEADER_PATH
from .timing import Result, Sampler, interleave

ServerCommand = Callable[[str, int], list[str]]
"""The command that serves an app ("module:attribute") on a port."""


def uvicorn(http: str, loop: str) -> ServerCommand:
    def command(app: str, port: int) -> list[str]:
        return uvicorn_command(app, port, "--workers", "1", "--http", http, "--loop", loop)

    return command


def granian(interface: str, *options: str) -> ServerCommand:
    def command(app: str, port: int) -> list[str]:
        return [
            sys.executable, "-m", "granian", "--interface", interface, *options,
            "--host", HOST, "--port", str(port), "--workers", "1", "--runtime-threads", "1",
            "--log-level", "warning", "--no-access-log", app,
        ]  # fmt: skip

    return command


def gunicorn_sync(app: str, port: int) -> list[str]:
    # Not tools.loopback's gunicorn_command: that one runs the threaded worker.
    return [
        sys.executable, "-m", "gunicorn", app, "--bind", f"{HOST}:{port}", "--workers", "1",
        "--worker-class", "sync", "--log-level", "warning", "--graceful-timeout", "2",
    ]  # fmt: skip


SERVER_KINDS: dict[str, ServerCommand] = {
    "uvicorn-h11": uvicorn("h11", "asyncio"),
    "uvicorn-httptools": uvicorn("httptools", "uvloop"),
    "granian-asgi": granian("asgi", "--loop", "uvloop"),
    # One blocking thread runs the WSGI app, as granian advises for an app that does no I/O. Its
    # default pool grows a Python thread per busy connection, up to 64 here, which fight for the
    # GIL, and retires them after 30 idle seconds. After such gaps a worker answered no request
    # in a whole 1 s run of `make bench`, and in paired 1 s runs (gaps of 6 s, retiring after 5 s)
    # a server answered 337 to 4,758 requests; with one thread, 3,321 to 5,107.
    "granian-wsgi": granian("wsgi", "--blocking-threads", "1"),
    "gunicorn-sync": gunicorn_sync,
}


@dataclass(frozen=True)
class LoadTarget:
    """One configuration: the app a server serves, and the request wrk sends it."""

    name: str
    app: str  # attribute of benchmarks.server_apps, or "module:attribute"
    headers: tuple[str, ...] = ()
    path: str = "/"
    beside: str | None = None  # the configuration loaded at the same time; None: the bare app


@dataclass(frozen=True)
class Server:
    """A server of the load benchmark: how it starts, what it serves, how hard wrk loads it."""

    title: str
    kind: str  # a key of SERVER_KINDS
    targets: tuple[LoadTarget, ...]  # the bare app first
    connections: int


SESSION = f"{SESSION_HEADER_NAME}: {VALID_ID}"
REQUEST_ID = f"X-Request-ID: {VALID_ID}"
FLOOR = "the floor: pass-through middleware + the app writing the header"
REQUIRED = "the required steps alone (see the step table), valid id"
REQUIRED_GENERATED = "the required steps alone, generated id"
DEFAULTS = "the required steps with ops-session's defaults, valid id"
DEFAULTS_GENERATED = "the required steps with ops-session's defaults, generated id"
OURS = "ops-session, valid id"
GENERATED = "ops-session, generated id"
# Each goal's row, the required steps it is measured beside, and the limit of the behaviour.
GOAL_ROWS = (
    (OURS, REQUIRED, DEFAULTS, "valid id"),
    (GENERATED, REQUIRED_GENERATED, DEFAULTS_GENERATED, "generated id"),
)


def targets(
    bare: LoadTarget,
    floor: str,
    required: str,
    ours: str,
    peer: LoadTarget,
    floor_path: str = "/",
    defaults: str | None = None,
) -> tuple[LoadTarget, ...]:
    """One server's rows: the bare app first, the floor, the required steps, ops-session, a peer.

    The required steps are loaded beside the floor, and ops-session beside the required steps
    with the same request: its goal compares the two, and one run measures that ratio once.
    The required steps with ops-session's defaults (`defaults`, where the server has them) are
    loaded beside ops-session: the limit of ops-session's default behaviour, which a missed goal
    is judged against, so that judgement too is a ratio measured within each run.
    """
    limit = (
        ()
        if defaults is None
        else (
            LoadTarget(DEFAULTS, defaults, (SESSION,), beside=OURS),
            LoadTarget(DEFAULTS_GENERATED, defaults, beside=GENERATED),
        )
    )
    return (
        bare,
        LoadTarget(FLOOR, floor, (SESSION,), floor_path),
        LoadTarget(REQUIRED, required, (SESSION,), beside=FLOOR),
        LoadTarget(REQUIRED_GENERATED, required, beside=FLOOR),
        *limit,
        LoadTarget(OURS, ours, (SESSION,), beside=REQUIRED),
        LoadTarget(GENERATED, ours, beside=REQUIRED_GENERATED),
        peer,
    )


ASGI_TARGETS = targets(
    LoadTarget("bare Starlette", "bare_starlette"),
    "floor_starlette",
    "required_steps_starlette",
    "ops_session_starlette",
    LoadTarget("asgi-correlation-id", "asgi_correlation_id_starlette", (REQUEST_ID,)),
    defaults="required_steps_with_defaults_starlette",
)
WSGI_TARGETS = targets(
    LoadTarget("bare Flask", "bare_flask"),
    "floor_flask",
    "required_steps_flask",
    "ops_session_flask",
    LoadTarget("werkzeug ProxyFix", "proxy_fix_flask", (SESSION,)),
    defaults="required_steps_with_defaults_flask",
)
# Django's settings are global to a process: its apps live in a module of their own, and the
# view that writes the header (for the floor) has a path of its own.
_DJANGO = "benchmarks.django_apps"
DJANGO_TARGETS = targets(
    LoadTarget("bare Django", f"{_DJANGO}:bare_django"),
    f"{_DJANGO}:pass_through_django",
    f"{_DJANGO}:required_steps_django",
    f"{_DJANGO}:ops_session_django",
    LoadTarget("django-guid", f"{_DJANGO}:django_guid_django", (REQUEST_ID,)),
    floor_path=HEADER_PATH,
)
WARM_UP_SECONDS = 1.0  # wrk takes whole seconds
RUN_ATTEMPTS = 3
_REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([0-9.]+)")


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def app_path(target: LoadTarget) -> str:
    """The target's app as a server names it: "module:attribute"."""
    return target.app if ":" in target.app else f"benchmarks.server_apps:{target.app}"


def server_command(kind: str, app: str, port: int) -> list[str]:
    return ["taskset", "--cpu-list", "0", *SERVER_KINDS[kind](app, port)]


@contextmanager
def serving(
    kind: str, target: LoadTarget, port: int, heap_shift: int | None = None
) -> Iterator[Popen[bytes]]:
    """Run the server of `kind` with the target's app until the block exits.

    The server imports the ops_session this process imported, wherever that is (a checkout's
    `src` may come before an installed copy), so that the load runs measure the same code.
    Given a `heap_shift`, it imports the app through `heap_layout`, at that shift's layout. It
    is stopped by process id, and so are its worker processes: granian, stopped while its
    worker is still starting, is killed after a wait and leaves that worker behind.
    """
    env = {"PYTHONPATH": pythonpath_with(ops_session)}
    app = app_path(target)
    if heap_shift is not None:
        env |= heap_layout.environment(app, heap_shift)
        app = heap_layout.APP_PATH
    with started(server_command(kind, app, port), port, env=env) as server:
        try:
            yield server
        finally:
            workers = {pid: _command_line(pid) for pid in _children(server.pid)}
    for pid, command_line in workers.items():
        if _command_line(pid) == command_line:  # still that worker, not a new process
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def _command_line(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def start_wrk(url: str, headers: tuple[str, ...], seconds: float, connections: int) -> Popen[str]:
    """Start wrk, pinned to CPU 1, against `url` (which must be loopback)."""
    assert url.startswith(f"http://{HOST}:"), url
    command = ["taskset", "--cpu-list", "1", "wrk", "--threads", "1"]
    command += ["--connections", str(connections), "--duration", f"{seconds:g}s"]
    for header in headers:
        command += ["--header", header]
    return Popen([*command, url], stdout=PIPE, stderr=STDOUT, text=True)


def requests_per_second(wrk: Popen[str], seconds: float) -> float:
    output, _ = wrk.communicate(timeout=seconds + 30)
    if wrk.returncode != 0 or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    match = _REQUESTS_PER_SECOND.search(output)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return float(match.group(1))


@dataclass(frozen=True)
class LoadResult:
    name: str
    beside: str  # the configuration it was loaded beside: the bare app, or the floor
    ratio: Result  # requests/s over that configuration's, one sample per round
    rate: Result  # requests/s, while sharing CPU 0 with that configuration
    beside_rate: Result  # that configuration's requests/s in the same runs


def measure_load(
    server: Server, *, rounds: int, seconds: float, generations: int = 1
) -> list[LoadResult]:
    """Throughput of each target as a ratio to the configuration it is loaded beside.

    Each run loads the target and its partner at once, for `seconds`, with both servers on
    CPU 0: the scheduler gives each half of that core, so the ratio of their rates is the ratio
    of their costs per request, and the drift of a noisy machine hits both alike. The partner
    is the bare app (`server.targets[0]`), or the configuration the target names: the rows a
    goal compares with the floor are loaded beside the floor itself, since a ratio measured in
    one run is more exact than one derived from two runs (each run's error counts once, not
    twice). The first row runs the bare app against a second copy of itself, which shows how
    exact one ratio is.

    Every row has two server processes of its own, its app's and its partner's, started one
    after the other and loaded only together, so that both have the same history when compared.
    One bare app shared by every row would be loaded in every run, and such a process measured
    about 2 % slower than copies of it loaded once a round (uvicorn, 48 runs).

    Two processes of the same app may also differ by a percent or so for their whole life (where
    their memory landed, their hash seeds: one control pair measured 0.983 over 8 runs, where
    three other pairs of copies measured 1.000 to 1.004), which more runs of the same processes
    do not average out. So the rounds are split among `generations` of fresh processes, each
    warmed up by a short run whose figures are dropped, and each process imports its app at a
    heap layout of its own (`heap_layout`), drawn from a generator seeded by the generation:
    without that, every process of an app would land its code alike, and the layout's part
    would not average out over generations either.
    """
    bare, *others = server.targets
    control = LoadTarget(f"{bare.name} (a second copy: the control)", bare.app)
    partners = {target.name: target for target in server.targets}
    pairs = [(target, partners[target.beside or bare.name]) for target in [control, *others]]
    ratios: dict[str, list[float]] = {target.name: [] for target, _ in pairs}
    rates: dict[str, list[tuple[float, float]]] = {target.name: [] for target, _ in pairs}
    for generation in range(generations):
        share = rounds // generations + (generation < rounds % generations)
        layouts = random.Random(generation)
        with ExitStack() as stack:
            samplers, runs = {}, {}
            for target, partner in pairs:
                urls = [
                    _url(stack, server.kind, partner, layouts.randrange(heap_layout.SHIFTS)),
                    _url(stack, server.kind, target, layouts.randrange(heap_layout.SHIFTS)),
                ]
                samplers[target.name], runs[target.name] = _side_by_side(
                    server, target, *urls, seconds=seconds
                )
            for result in interleave(samplers, rounds=share, seed=generation + 1):
                ratios[result.name] += result.samples
                rates[result.name] += runs[result.name][1:]  # without the warm-up run
    return [
        LoadResult(
            target.name,
            partner.name,
            Result(target.name, ratios[target.name]),
            Result(target.name, [rate for rate, _ in rates[target.name]]),
            Result(partner.name, [partner_rate for _, partner_rate in rates[target.name]]),
        )
        for target, partner in pairs
    ]


def _url(stack: ExitStack, kind: str, target: LoadTarget, heap_shift: int) -> str:
    port = free_port()
    stack.enter_context(serving(kind, target, port, heap_shift))
    return f"http://{HOST}:{port}{target.path}"


def _side_by_side(
    server: Server, target: LoadTarget, partner_url: str, target_url: str, *, seconds: float
) -> tuple[Sampler, list[tuple[float, float]]]:
    """A sampler of the target's rate over its partner's, and the list of both rates it fills.

    Its first run is `interleave`'s warm-up, whose figures are dropped: that one is short. A
    run in which either server answered nothing measures no ratio: it is run again, a few times
    at most.
    """
    runs: list[tuple[float, float]] = []

    def sample() -> float:
        length = seconds if runs else WARM_UP_SECONDS
        # Both get the same request, so that only the app's work differs; which of the two
        # starts first alternates, so that starting first is no advantage.
        in_order = [partner_url, target_url][:: -1 if len(runs) % 2 else 1]
        for _ in range(RUN_ATTEMPTS):
            wrks = {
                url: start_wrk(url, target.headers, length, server.connections) for url in in_order
            }
            partner_rate = requests_per_second(wrks[partner_url], length)
            rate = requests_per_second(wrks[target_url], length)
            if rate and partner_rate:
                runs.append((rate, partner_rate))
                return rate / partner_rate
        raise RuntimeError(
            f"{server.title}: {target.name!r} or its partner served no request in "
            f"{RUN_ATTEMPTS} runs of {length:g} s in a row; is the server stuck?"
        )

    return sample, runs


def to_bare(results: Sequence[LoadResult]) -> dict[str, list[float]]:
    """Each configuration's throughput over the bare app's, per round (the bare app's own too).

    Measured in the run itself for a row loaded beside the bare app; for a row loaded beside
    another, its ratio times that row's ratio to the bare app in the same round.
    """
    by_name = {result.name: result for result in results}
    found: dict[str, list[float]] = {}

    def ratios(name: str) -> list[float]:
        if name not in found:
            if name in by_name:
                result = by_name[name]
                partner = ratios(result.beside)
                found[name] = [r * p for r, p in zip(result.ratio.samples, partner, strict=True)]
            else:  # the bare app, which no row measures
                found[name] = [1.0] * len(results[0].ratio.samples)
        return found[name]

    for result in results:
        ratios(result.name)
    return found


def relative(results: Sequence[LoadResult], name: str, reference: str) -> float:
    """A configuration's throughput over the reference's: the median over rounds of the ratio
    of their ratios to the bare app in the same round. For a row loaded beside the reference
    this is exactly its measured ratio."""
    per_round = to_bare(results)
    return statistics.median(
        ours / theirs for ours, theirs in zip(per_round[name], per_round[reference], strict=True)
    )
