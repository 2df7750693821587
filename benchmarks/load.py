"""Real servers on 127.0.0.1 under wrk: throughput with the middleware, over the bare app's.

The servers run on CPU 0 and wrk on CPU 1. Every server is started here and stopped by process
id at the end; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from subprocess import PIPE, STDOUT, Popen

from tools.loopback import free_port, running

from ops_session import SESSION_HEADER_NAME

from .asgi_apps import VALID_ID
from .timing import Result, Sampler, interleave


@dataclass(frozen=True)
class LoadTarget:
    name: str
    server: str  # "uvicorn" or "gunicorn"
    app: str  # attribute of benchmarks.server_apps, or "module:attribute"
    headers: tuple[str, ...] = ()


SESSION = f"{SESSION_HEADER_NAME}: {VALID_ID}"
ASGI_TARGETS = [
    LoadTarget("bare Starlette", "uvicorn", "bare_starlette"),
    LoadTarget(
        "bare Starlette, answering with the session header itself",
        "uvicorn",
        "bare_starlette_setting_the_header",
        (SESSION,),
    ),
    LoadTarget("ops-session, valid id", "uvicorn", "ops_session_starlette", (SESSION,)),
    LoadTarget("ops-session, generated id", "uvicorn", "ops_session_starlette"),
    LoadTarget(
        "pass-through middleware (the floor)", "uvicorn", "pass_through_starlette", (SESSION,)
    ),
    LoadTarget(
        "asgi-correlation-id",
        "uvicorn",
        "asgi_correlation_id_starlette",
        (f"X-Request-ID: {VALID_ID}",),
    ),
]
WSGI_TARGETS = [
    LoadTarget("bare Flask", "gunicorn", "bare_flask"),
    LoadTarget(
        "bare Flask, answering with the session header itself",
        "gunicorn",
        "bare_flask_setting_the_header",
        (SESSION,),
    ),
    LoadTarget("ops-session, valid id", "gunicorn", "ops_session_flask", (SESSION,)),
    LoadTarget("ops-session, generated id", "gunicorn", "ops_session_flask"),
    LoadTarget("werkzeug ProxyFix", "gunicorn", "proxy_fix_flask", (SESSION,)),
]
# Django's settings are global to a process: its apps live in a module of their own.
DJANGO_TARGETS = [
    LoadTarget("bare Django", "gunicorn", "benchmarks.django_apps:bare_django"),
    LoadTarget(
        "ops-session, valid id", "gunicorn", "benchmarks.django_apps:ops_session_django", (SESSION,)
    ),
    LoadTarget(
        "ops-session, generated id", "gunicorn", "benchmarks.django_apps:ops_session_django"
    ),
    LoadTarget(
        "django-guid",
        "gunicorn",
        "benchmarks.django_apps:django_guid_django",
        (f"X-Request-ID: {VALID_ID}",),
    ),
]
_REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([0-9.]+)")


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def server_command(target: LoadTarget, port: int) -> list[str]:
    app = target.app if ":" in target.app else f"benchmarks.server_apps:{target.app}"
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    if target.server == "uvicorn":
        server = ["uvicorn", app, *bind, "--workers", "1", "--http", "h11", "--loop", "asyncio"]
        server += ["--log-level", "warning", "--no-access-log"]
    else:
        server = ["gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        server += ["--worker-class", "sync", "--log-level", "warning"]
    return ["taskset", "--cpu-list", "0", sys.executable, "-m", *server]


def start_wrk(url: str, headers: tuple[str, ...], seconds: float, connections: int) -> Popen[str]:
    """Start wrk, pinned to CPU 1, against `url` (which must be loopback)."""
    assert url.startswith("http://127.0.0.1:"), url
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
    ratio: Result  # requests/s over the bare app's, per run
    rate: Result  # requests/s, while sharing CPU 0 with the bare app
    bare_rate: Result  # the bare app's requests/s in the same runs


def measure_load(
    targets: list[LoadTarget], *, rounds: int, seconds: float, connections: int
) -> list[LoadResult]:
    """Throughput of each target as a ratio to the bare app (`targets[0]`), loaded side by side.

    Each run loads the target and the bare app at once, for `seconds`, with both servers on
    CPU 0: the scheduler gives each half of that core, so the ratio of their rates is the ratio
    of their costs per request, and the drift of a noisy machine hits both alike. The first row
    runs the bare app against a second copy of itself, which shows how exact the ratio is.
    """
    bare, *others = targets
    control = LoadTarget(f"{bare.name} (a second copy: the control)", bare.server, bare.app)
    compared = [control, *others]
    rates: dict[str, tuple[list[float], list[float]]] = {t.name: ([], []) for t in compared}
    with ExitStack() as stack:
        urls = {}
        for target in [bare, *compared]:
            port = free_port()
            urls[target.name] = stack.enter_context(running(server_command(target, port), port))

        def side_by_side(target: LoadTarget) -> Sampler:
            runs = 0

            def sample() -> float:
                nonlocal runs
                runs += 1
                # Both get the same request, so that only the app's work differs; which of the
                # two starts first alternates, so that starting first is no advantage.
                names = [bare.name, target.name][:: 1 if runs % 2 else -1]
                wrks = {
                    name: start_wrk(urls[name], target.headers, seconds, connections)
                    for name in names
                }
                bare_rate = requests_per_second(wrks[bare.name], seconds)
                rate = requests_per_second(wrks[target.name], seconds)
                rates[target.name][0].append(rate)
                rates[target.name][1].append(bare_rate)
                return rate / bare_rate

            return sample

        ratios = interleave({t.name: side_by_side(t) for t in compared}, rounds=rounds)
    return [
        LoadResult(
            ratio.name,
            ratio,
            Result(ratio.name, rates[ratio.name][0][1:]),  # without the warm-up sample
            Result(bare.name, rates[ratio.name][1][1:]),
        )
        for ratio in ratios
    ]
