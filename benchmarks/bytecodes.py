"""Bytecodes per request, by function: a profile of the middlewares that no layout can move.

An instruction count (`instructions.py`) moves with where the heap put things, by hundreds of
instructions a request; the bytecodes a request runs do not, so they show to the unit where one
middleware does more than another. Each row of `PROFILED` serves `WARM_UP` requests, then is
traced (`sys.settrace`, one event per bytecode) over `REQUESTS` requests and over twice as many:
the difference, over `REQUESTS`, is one request's bytecodes, whatever serving a batch costs.

`python -m benchmarks.bytecodes` prints the table alone; `make bench` adds it to the report.
`imports_alone` traces ops-session's rows in fresh processes, with and without the imports a
goal says add nothing (`IMPORTED`), so that only what those imports change can differ.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from tools.loopback import ROOT, pythonpath_with

import ops_session

from . import instructions
from .instructions import (
    BARE,
    ID_STATES,
    INTEGRATIONS_IMPORTED,
    MIRASCOPE_IMPORTED,
    OURS,
    REQUIRED,
    REQUIRED_DEFAULTS,
    VALID,
    Row,
)

WARM_UP = 20
# A multiple of the batch the default generator formats ids in, so that each request's share
# of formatting the next batch is the same in every row.
REQUESTS = 64
PROFILED = (BARE, REQUIRED, REQUIRED_DEFAULTS, OURS)
# What a goal says adds nothing to a request that does not use it, and the row without it.
IMPORTED = (MIRASCOPE_IMPORTED, INTEGRATIONS_IMPORTED)
# The middlewares' own code: ops-session's package and the yardsticks' module.
_MIDDLEWARE_CODE = (
    str(Path(instructions.__file__).with_name("required.py")),
    str(Path(ops_session.__file__).parent),
)


def _traced(run: Callable[[int], None], requests: int) -> Counter[CodeType]:
    """The bytecodes that `requests` requests run, by the code object that ran them."""
    counts: Counter[CodeType] = Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
        elif event == "opcode":
            counts[frame.f_code] += 1
        return tracer

    sys.settrace(tracer)
    try:
        run(requests)
    finally:
        sys.settrace(None)
    return counts


def per_request(row: Row, requests: int = REQUESTS) -> Counter[CodeType]:
    """The bytecodes one request of `row` runs, by code object."""
    run = instructions.asgi_requests(row) if row.kind == "ASGI" else instructions.wsgi_requests(row)
    run(WARM_UP)
    once, twice = _traced(run, requests), _traced(run, 2 * requests)
    twice.subtract(once)
    return Counter({code: round(count / requests) for code, count in twice.items() if count > 0})


def rows() -> list[Row]:
    return [
        Row(kind, app, ids) for kind in ("ASGI", "WSGI") for app in PROFILED for ids in ID_STATES
    ]


def measure() -> dict[Row, Counter[CodeType]]:
    return {row: per_request(row) for row in rows()}


def imports_alone() -> dict[Row, int]:
    """One request's bytecodes for ops-session alone and for each of `IMPORTED`, valid id, ASGI
    and WSGI, each traced in a python of its own that imported only what its row names.

    In one process every row would run after every import; here an import that registers a
    listener, patches a function or fills a cache that a request reads shows as a difference.
    """
    # The ops-session this process imported, wherever that is, as the load runs do.
    env = {**os.environ, "PYTHONPATH": pythonpath_with(ops_session)}
    found = {}
    for kind in ("ASGI", "WSGI"):
        for app in (OURS, *IMPORTED):
            traced = subprocess.run(
                [sys.executable, "-m", "benchmarks.bytecodes", "--alone", kind, app],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env=env,
            )
            found[Row(kind, app, VALID)] = int(traced.stdout)
    return found


def _alone(kind: str, app: str) -> int:
    """The child of `imports_alone`: the bytecodes of one request of that row, valid id."""
    row = Row(kind, app, VALID)
    instructions._import_what_the_row_names(row)
    return per_request(row).total()


def is_middleware_code(code: CodeType) -> bool:
    """Whether ops-session or a yardstick runs `code`, rather than the app, the server or the
    harness that sends the requests (`serve_asgi`)."""
    return code.co_filename.startswith(_MIDDLEWARE_CODE) and not code.co_qualname.startswith(
        "serve_asgi"
    )


def table(profiles: dict[Row, Counter[CodeType]]) -> str:
    """Each middleware's bytecodes per request over its bare app, and its own code's by function."""
    lines = [
        "| configuration | id | bytecodes over bare | the middleware's own code, by function |",
        "| --- | --- | --- | --- |",
    ]
    for row, profile in profiles.items():
        if row.app == BARE:
            continue
        added = profile.total() - profiles[Row(row.kind, BARE, row.ids)].total()
        own = sorted(
            (
                (code.co_qualname, count)
                for code, count in profile.items()
                if is_middleware_code(code)
            ),
            key=lambda item: -item[1],
        )
        functions = ", ".join(f"`{name.replace('<locals>.', '')}` {count}" for name, count in own)
        lines.append(f"| {row.kind}, {row.app} | {row.ids} | {added:+,} | {functions} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--alone"]:
        print(_alone(*sys.argv[2:4]))
    else:
        print(table(measure()))
