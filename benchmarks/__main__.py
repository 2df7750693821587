"""`make bench` (python -m benchmarks): measure, print the tables, write docs/benchmarks.md.

Options: `--quick` takes few short samples (the test suite runs it so the suite cannot rot),
`--no-load` skips the real-server runs, `--output DIR` chooses where the report goes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import core, inprocess, jobs, load, memory, profile, report
from .timing import Result, interleave, paired_median

ROOT = Path(__file__).resolve().parent.parent
WSGI_STREAMS = {"ops-session, 10-chunk stream": "bare Flask, 10-chunk stream"}
OURS = "ops-session, valid id"
# The load runs: the server, its configurations (the bare app first), wrk's connections.
SERVERS = [
    ("uvicorn (h11, asyncio), one worker", load.ASGI_TARGETS, 64),
    ("gunicorn, one sync worker", load.WSGI_TARGETS, 16),
    ("gunicorn, one sync worker, Django", load.DJANGO_TARGETS, 16),
]
DJANGO_STREAMS = {"ops-session, 10-chunk stream": "bare Django, 10-chunk stream"}


@dataclass(frozen=True)
class Settings:
    rounds: int
    asgi_calls: int
    wsgi_calls: int
    core_calls: int
    memory_requests: int
    load_rounds: int
    load_seconds: float


FULL = Settings(15, 3000, 2000, 200_000, 100_000, 15, 2.0)
QUICK = Settings(2, 20, 20, 200, 300, 2, 1.0)


@dataclass(frozen=True)
class Goal:
    text: str
    measured: str
    met: bool


def asgi_bare(name: str) -> str:
    return "bare Starlette"


def wsgi_bare(name: str) -> str:
    if name in WSGI_STREAMS.values():
        return name
    return WSGI_STREAMS.get(name, "bare Flask")


def django_bare(name: str) -> str:
    if name in DJANGO_STREAMS.values():
        return name
    return DJANGO_STREAMS.get(name, "bare Django")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few, short samples")
    parser.add_argument("--no-load", action="store_true", help="skip the real-server runs")
    parser.add_argument("--output", type=Path, default=ROOT / "docs", help="report directory")
    options = parser.parse_args(argv)
    settings = QUICK if options.quick else FULL
    run_load = not options.no_load
    if run_load and not load.wrk_available():
        parser.error("wrk is not installed: `make bench` installs it, or pass --no-load")

    with asyncio.Runner() as runner:
        print("In-process ASGI ...", flush=True)
        asgi_samplers = inprocess.asgi_samplers(runner, settings.asgi_calls)
        asgi = interleave(asgi_samplers, rounds=settings.rounds)
        print("In-process WSGI ...", flush=True)
        wsgi = interleave(inprocess.wsgi_samplers(settings.wsgi_calls), rounds=settings.rounds)
        print("In-process Django ...", flush=True)
        django = interleave(inprocess.django_samplers(settings.wsgi_calls), rounds=settings.rounds)
        print("Core ...", flush=True)
        core_results = interleave(core.samplers(settings.core_calls), rounds=settings.rounds)
        print("Background jobs (Celery signal handlers) ...", flush=True)
        job_results = interleave(jobs.samplers(settings.core_calls // 20), rounds=settings.rounds)
        print("Memory (tracemalloc) ...", flush=True)
        growth = memory.growth(runner, settings.memory_requests)
    loads: list[tuple[str, list[load.LoadResult]]] = []
    profiles: list[tuple[str, profile.Profile]] = []
    if run_load:
        for server, targets, connections in SERVERS:
            print(f"Load on {server} ...", flush=True)
            loads.append(
                (
                    server,
                    load.measure_load(
                        targets,
                        rounds=settings.load_rounds,
                        seconds=settings.load_seconds,
                        connections=connections,
                    ),
                )
            )

        if profile.py_spy_available():
            for server, targets, connections in SERVERS:
                print(f"Profile of {server} under load (py-spy) ...", flush=True)
                (ours,) = [target for target in targets if target.name == OURS]
                seconds = 2.0 if options.quick else 10.0
                profiles.append(
                    (server, profile.profile_server(ours, connections=connections, seconds=seconds))
                )

    goals = evaluate(asgi, wsgi, core_results, growth, loads)
    text = render(
        settings, asgi, wsgi, django, core_results, job_results, growth, loads, goals, profiles
    )
    options.output.mkdir(parents=True, exist_ok=True)
    (options.output / "benchmarks.md").write_text(text, encoding="utf-8")
    report.chart(
        options.output / "benchmarks.png",
        [
            ("In-process ASGI: a minimal Starlette app", asgi, asgi_bare),
            ("In-process WSGI: a minimal Flask app", wsgi, wsgi_bare),
            ("In-process WSGI: a minimal Django view", django, django_bare),
        ],
    )
    print()
    print(text)
    print(f"Wrote {options.output / 'benchmarks.md'} and {options.output / 'benchmarks.png'}.")
    return 0


def evaluate(
    asgi: list[Result],
    wsgi: list[Result],
    core_results: list[Result],
    growth: list[memory.Growth],
    loads: list[tuple[str, list[load.LoadResult]]],
) -> list[Goal]:
    to_default = report.overhead_ratio(asgi, OURS, "asgi-correlation-id", asgi_bare)
    to_none = report.overhead_ratio(asgi, OURS, "asgi-correlation-id, validator=None", asgi_bare)
    goals = [
        Goal(
            "ASGI overhead ≤ 0.5 × asgi-correlation-id's (default validator)",
            f"{to_default:.2f} ×",
            to_default <= 0.5,
        ),
        Goal(
            "ASGI overhead < asgi-correlation-id's with validator=None",
            f"{to_none:.2f} ×",
            to_none < 1.0,
        ),
    ]
    for name in (OURS, "ops-session, 10-chunk stream"):
        ratio = report.overhead_ratio(wsgi, name, "werkzeug ProxyFix", wsgi_bare)
        goals.append(
            Goal(f"WSGI overhead ({name}) ≤ 2 × ProxyFix's", f"{ratio:.2f} ×", ratio <= 2.0)
        )
    for server, results in loads:
        (result,) = [result for result in results if result.name == OURS]
        ratio = result.ratio.median
        goals.append(Goal(f"{server}: throughput ≥ 0.97 × bare", f"{ratio:.3f} ×", ratio >= 0.97))
    yardstick, current = core_results[0], report.find(core_results, "current_session()")
    ratio = paired_median(lambda c, y: c / y, current, yardstick)
    goals.append(
        Goal(
            "current_session() ≤ a call of ContextVar.get() (10 % allowed for timer noise)",
            f"{ratio:.2f} ×",
            ratio <= 1.1,
        )
    )
    worst = max(growth, key=lambda g: g.after - g.before)
    goals.append(
        Goal(
            f"no memory growth over {worst.requests:,} in-process requests (≤ 1 KiB retained)",
            f"{worst.after - worst.before:,} bytes at most ({worst.name})",
            worst.after - worst.before <= 1024,
        )
    )
    return goals


def render(
    settings: Settings,
    asgi: list[Result],
    wsgi: list[Result],
    django: list[Result],
    core_results: list[Result],
    job_results: list[Result],
    growth: list[memory.Growth],
    loads: list[tuple[str, list[load.LoadResult]]],
    goals: list[Goal],
    profiles: list[tuple[str, profile.Profile]],
) -> str:
    today = datetime.date.today().isoformat()
    parts = [
        "# Benchmarks",
        f"Measured by `make bench` on {today}: {report.machine()}."
        + (" **Quick run: too few samples to quote.**" if settings is QUICK else ""),
        "Every table comes from one run. Configurations are sampled in interleaved rounds, in a "
        "new order each round, so that the drift of a noisy machine spreads over all of them. "
        "Times are medians over the rounds with the min–max spread; an overhead or ratio is the "
        "median over rounds of the difference or ratio taken within each round.",
        "![Per-request overhead](benchmarks.png)",
        "## Goals",
        report.table(
            ["goal", "measured", "met"],
            [[g.text, g.measured, "yes" if g.met else "**no**"] for g in goals],
        ),
        "## In-process ASGI: a minimal Starlette app",
        f"Each request is a fresh uvicorn-shaped scope with ten ordinary headers, sent straight to "
        f"the app on one event loop ({settings.rounds} rounds of {settings.asgi_calls} requests). "
        "The valid-id rows send a UUID4 in the header each middleware reads. The pass-through "
        "middleware only makes a value current and wraps `send`: the floor under any session "
        "middleware.",
        report.in_process_table(asgi, "asgi-correlation-id", asgi_bare),
        stamping_cost(asgi, "ASGI"),
        "## In-process WSGI: a minimal Flask app",
        f"Each request is a fresh environ with the same headers; the body is iterated and closed "
        f"as a server does ({settings.rounds} rounds of {settings.wsgi_calls} requests). The "
        "10-chunk stream rows are compared with the bare app streaming the same body.",
        report.in_process_table(wsgi, "werkzeug ProxyFix", wsgi_bare),
        "## In-process WSGI: a minimal Django view",
        f"Django's `WSGIHandler` with `MIDDLEWARE` holding only the middleware named, called with "
        f"the same environs ({settings.rounds} rounds of {settings.wsgi_calls} requests). "
        "django-guid reads and validates a UUID from `X-Request-ID`.",
        report.in_process_table(django, "django-guid", django_bare),
        stamping_cost(wsgi, "WSGI"),
    ]
    for server, results in loads:
        parts += [
            f"## Real server: {server}",
            "Each run loads one configuration and the bare app at the same time, for "
            f"{settings.load_seconds:g} s, with the same request (one wrk thread each, on CPU 1, "
            "to 127.0.0.1). Both servers run on CPU 0, where the scheduler gives each half of the "
            "core, so the ratio of their rates is the ratio of their costs per request and the "
            "machine's drift hits both alike. The control row loads the bare app against a "
            f"second copy of itself. Medians of {settings.load_rounds} interleaved runs.",
            "The reference row is a cheap middleware to compare with: under uvicorn, a "
            "pass-through that only makes a value current and wraps `send`, the floor under any "
            "session middleware; under gunicorn, werkzeug's ProxyFix (for Django, django-guid).",
            report.load_table(results),
        ]
    for server, where in profiles:
        parts += [
            f"## Where the time goes under {server}",
            f"py-spy sampled {server} serving the ops-session app (valid ids) while wrk loaded it: "
            f"{where.own} of {where.samples} samples ({where.share:.1%}) had an ops-session frame "
            "on top, which counts its own Python code and the C functions it calls (the id "
            "check, the ContextVar), but not the app or the server. The rest is the server, the "
            "framework and the app. The busiest ops-session lines:",
            report.table(["line", "samples"], [[line, str(count)] for line, count in where.top]),
        ]
    parts += [
        "## The core alone",
        report.core_table(core_results),
        "## Background jobs: one Celery task",
        "What carrying the session adds to a task: the publish, prerun and postrun signal "
        "handlers, called with the arguments Celery passes them (the headers of a real task "
        "message, and the task with its request pushed), the worker's side in a context of its "
        f"own. {settings.rounds} rounds of {settings.core_calls // 20:,} tasks. The first row is "
        "Celery's own work in that loop; asgi-correlation-id's Celery extension "
        "(`load_correlation_ids`, from its 4.x line: 5.0 dropped it) is measured in the same run. "
        "Unlike ops-session it invents an id for a task published without one, and it clears its "
        "value after a task rather than restoring the previous one.",
        jobs.table(job_results),
        "## Memory",
        "Bytes still allocated (tracemalloc) after the requests, following a warm-up.",
        report.memory_table(growth),
        "## Reproduce",
        "```sh\nmake bench                                # everything, about ten minutes\n"
        ".venv/bin/python -m benchmarks --no-load   # without the real-server runs\n```",
    ]
    return "\n\n".join(parts) + "\n"


def stamping_cost(results: list[Result], kind: str) -> str:
    """What stamping every span with the session adds under OpenTelemetry's middleware."""
    plain = report.find(results, f"OpenTelemetry {kind} + ops-session")
    stamped = report.find(results, f"OpenTelemetry {kind} + ops-session, spans stamped")
    cost = paired_median(lambda with_it, without: with_it - without, stamped, plain)
    return (
        f"The OpenTelemetry {kind} rows put OpenTelemetry's middleware outside ours, as "
        "`FastAPIInstrumentor` and the usual Flask setup do, with a provider that drops its "
        "spans. Stamping them with the session (`SessionSpanProcessor` on every span, and its "
        "request listener on the server span) adds "
        f"{cost:+.2f} µs per request (paired median of the stamped row minus the row without); "
        "without OpenTelemetry no listener is registered and the other rows pay nothing."
    )


if __name__ == "__main__":
    sys.exit(main())
