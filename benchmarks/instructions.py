"""Instructions per request, counted under cachegrind: figures that a noisy machine cannot swing.

Each configuration runs in a child python under `valgrind --tool=cachegrind --cache-sim=no`,
which builds it, serves `WARM_UP` requests, and then forks twice: one process serves no request
and one serves `requests`, each exiting at once. Both start from the same state, so the
difference of their totals, over `requests`, is what one request costs once the process has
started and the interpreter has specialised its code; start-up, imports and the warm-up cancel
out, and the start-up is paid once. The cyclic garbage collector is off during the requests
(`gc.disable()`): its passes come every so many allocations, not per request, so that one lands
in a row's requests and misses another's. The counts are of the code that runs, allocations
included; the timings include the collector. Each row is counted in each of `SAMPLES`: a hash
seed (`PYTHONHASHSEED`) and a heap layout of its own (`_shift_the_heap`); the median is quoted.
A count in one sample repeats to within a few instructions.

The children import only the app, the middleware and what a row names (Mirascope, the peers,
every integration module of ops-session), so that a row that imports something measures what
importing it costs the request.

`python -m benchmarks.instructions` prints the table alone (`--only TEXT` keeps the rows whose
name contains TEXT, with their bare app); `make bench` adds it to docs/benchmarks.md. Each row's
count is kept in `.bench-cache/`, under a fingerprint of what it depends on (the code of
ops-session and of the modules the children run, the measured packages' versions, Python, the
method): a count is deterministic, so a run that stopped part-way, or one after `--only`,
counts only the rest. The children run with the same few environment variables whoever starts
them (see `count`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WARM_UP = 200
REQUESTS = 800
# Each row is counted once per sample, and the median is quoted. A sample is a hash seed and a
# heap layout (see `_shift_the_heap`): under one of them, two rows that run the same code can
# differ by 8 % of a middleware's overhead (1,800 instructions under Flask), as the dicts and
# CPython's type-attribute cache happen to collide; the median of five is far closer, and one
# sample that goes astray does not move it.
SAMPLES = (1, 2, 3, 4, 5)
BENCHMARKS = Path(__file__).resolve().parent
CACHE = BENCHMARKS.parent / ".bench-cache"
# The packages whose code the rows run besides ops-session's.
MEASURED_PACKAGES = ("starlette", "flask", "werkzeug", "asgi-correlation-id", "mirascope")
VALID = "valid id"
MISSING = "no id"
INVALID = "invalid id"
ID_STATES = (VALID, MISSING, INVALID)
INVALID_ID = "../../etc/passwd"
BARE = "bare"
PASS_THROUGH = "pass-through middleware"
REQUIRED = "the required steps"
REQUIRED_DEFAULTS = "the required steps, with ops-session's defaults"
OURS = "ops-session"
CORRELATION_ID = "asgi-correlation-id"
CORRELATION_HEADER = "x-request-id"
MIRASCOPE_IMPORTED = "ops-session, mirascope.ops imported, unused"
INTEGRATIONS_IMPORTED = "ops-session, every integration imported, unused"
MIRASCOPE_READ = "ops-session, handler reads mirascope.ops.current_session()"
OURS_READ = "ops-session, handler reads current_session()"
NOT_UPDATED = "ops-session, update_request_header=False"
INTEGRATIONS = (
    "aiohttp", "arq", "celery", "django", "fastmcp", "httpx", "httpx2", "instrumentation",
    "logging", "mcp", "otel", "requests", "rq",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One configuration: an app behind a middleware, sent requests with one id state."""

    kind: str  # "ASGI" or "WSGI"
    app: str  # BARE, PASS_THROUGH, REQUIRED, OURS, an option row, or a peer
    ids: str  # one of ID_STATES

    @property
    def name(self) -> str:
        return f"{self.kind}, {self.app}, {self.ids}"


# Option rows: the middleware's options, and the request headers that exercise them.
OPTION_ROWS: dict[str, dict[str, Any]] = {
    "ops-session, also_accept=['x-request-id']": {"also_accept": ["X-Request-ID"]},
    "ops-session, query_param='session_id'": {"query_param": "session_id"},
    "ops-session, cookie='session_id'": {"cookie": "session_id"},
    "ops-session, cookie and set_cookie": {"cookie": "session_id", "set_cookie": True},
    "ops-session, install(app)": {},
    # What showing the app the effective id in the request's header costs (the default): the
    # required steps leave the request's headers alone.
    "ops-session, update_request_header=False": {"update_request_header": False},
}


def rows() -> list[Row]:
    """Every row `make bench` counts, in the order of its table."""
    found: list[Row] = []
    for kind in ("ASGI", "WSGI"):
        for app in (BARE, PASS_THROUGH, REQUIRED, REQUIRED_DEFAULTS, OURS):
            found += [Row(kind, app, ids) for ids in ID_STATES]
        # The options cost a request without an id most: ASGI's rows show it; WSGI's install().
        options = OPTION_ROWS if kind == "ASGI" else ["ops-session, install(app)", NOT_UPDATED]
        found += [Row(kind, app, MISSING) for app in options]
        found.append(Row(kind, NOT_UPDATED, INVALID))
        found += [Row(kind, OURS_READ, VALID), Row(kind, MIRASCOPE_READ, VALID)]
        found += [Row(kind, MIRASCOPE_IMPORTED, VALID), Row(kind, INTEGRATIONS_IMPORTED, VALID)]
    found += [Row("ASGI", CORRELATION_ID, ids) for ids in (VALID, MISSING)]
    return found


# The child: build one row's app and serve it requests.


def _import_what_the_row_names(row: Row) -> None:
    if row.app in (MIRASCOPE_IMPORTED, MIRASCOPE_READ):
        importlib.import_module("mirascope.ops")
    if row.app == INTEGRATIONS_IMPORTED:
        importlib.import_module("mirascope.ops")
        for name in INTEGRATIONS:
            importlib.import_module(f"ops_session.{name}")


def _header_value(row: Row) -> str | None:
    from .required import VALID_ID

    return {VALID: VALID_ID, MISSING: None, INVALID: INVALID_ID}[row.ids]


def asgi_app(row: Row) -> Any:
    """The Starlette app of an ASGI row, behind the row's middleware."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    import ops_session

    from .required import (
        PassThroughMiddleware,
        RequiredStepsMiddleware,
        RequiredStepsWithDefaults,
    )

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def reading(request: Request) -> Response:
        ops_session.current_session()
        return PlainTextResponse("ok")

    async def reading_mirascope(request: Request) -> Response:
        from mirascope.ops import current_session

        current_session()
        return PlainTextResponse("ok")

    handler = {OURS_READ: reading, MIRASCOPE_READ: reading_mirascope}.get(row.app, endpoint)
    middleware: list[Middleware] = []
    if row.app == PASS_THROUGH:
        middleware.append(Middleware(PassThroughMiddleware))
    elif row.app == REQUIRED:
        middleware.append(Middleware(RequiredStepsMiddleware))
    elif row.app == REQUIRED_DEFAULTS:
        middleware.append(Middleware(RequiredStepsWithDefaults))
    elif row.app == CORRELATION_ID:
        from asgi_correlation_id import CorrelationIdMiddleware

        middleware.append(Middleware(CorrelationIdMiddleware))
    elif row.app in OPTION_ROWS and row.app != "ops-session, install(app)":
        middleware.append(Middleware(ops_session.SessionMiddleware, **OPTION_ROWS[row.app]))
    elif row.app != BARE and row.app != "ops-session, install(app)":
        middleware.append(Middleware(ops_session.SessionMiddleware))
    app = Starlette(routes=[Route("/", handler)], middleware=middleware)
    if row.app == "ops-session, install(app)":
        ops_session.install(app)
    return app


def wsgi_app(row: Row) -> Any:
    """The Flask app of a WSGI row, behind the row's middleware."""
    from flask import Flask

    import ops_session

    from .required import (
        AnsweringWithTheId,
        WSGIPassThroughMiddleware,
        WSGIRequiredStepsWithDefaults,
    )

    flask = Flask("instructions")

    if row.app == MIRASCOPE_READ:
        from mirascope.ops import current_session

        @flask.get("/")
        def index_mirascope() -> str:
            current_session()
            return "ok"

    elif row.app == OURS_READ:

        @flask.get("/")
        def index_reading() -> str:
            ops_session.current_session()
            return "ok"

    else:

        @flask.get("/")
        def index() -> str:
            return "ok"

    if row.app == "ops-session, install(app)":
        ops_session.install(flask)
        return flask
    app = flask.wsgi_app
    if row.app == PASS_THROUGH:
        return WSGIPassThroughMiddleware(app)
    if row.app == REQUIRED:
        return AnsweringWithTheId(app)
    if row.app == REQUIRED_DEFAULTS:
        return WSGIRequiredStepsWithDefaults(app)
    if row.app in OPTION_ROWS:
        return ops_session.WSGISessionMiddleware(app, **OPTION_ROWS[row.app])
    if row.app == BARE:
        return app
    return ops_session.WSGISessionMiddleware(app)


def asgi_requests(row: Row) -> Callable[[int], None]:
    """Serve `n` requests, each a fresh uvicorn-shaped scope with ten ordinary headers."""
    from .required import ORDINARY_HEADERS, serve_asgi

    app = asgi_app(row)
    headers = list(ORDINARY_HEADERS)
    value = _header_value(row)
    if value is not None:
        name = CORRELATION_HEADER if row.app == CORRELATION_ID else "mirascope-session-id"
        headers.append((name.encode(), value.encode()))

    def run(n: int) -> None:
        asyncio.run(serve_asgi(app, headers, n))

    return run


def wsgi_requests(row: Row) -> Callable[[int], None]:
    """Serve `n` requests, each a fresh environ, iterating and closing the body as servers do."""
    from werkzeug.test import EnvironBuilder

    from .required import ORDINARY_HEADERS

    app = wsgi_app(row)
    headers = {name.decode(): value.decode() for name, value in ORDINARY_HEADERS}
    headers.pop("host")
    value = _header_value(row)
    if value is not None:
        headers["Mirascope-Session-Id"] = value
    environ = EnvironBuilder(
        path="/", base_url="http://api.example.com", headers=list(headers.items())
    ).get_environ()

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[..., None]:
        return write

    def write(data: bytes) -> None:
        pass

    def run(n: int) -> None:
        for _ in range(n):
            body: Iterable[bytes] = app(dict(environ), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return run


_ballast: list[str] = []


def _shift_the_heap(sample: int) -> None:
    """Allocate, and keep, a sample's own amount of small strings before the row's imports.

    Everything imported after lands at addresses of the sample's own. CPython's type-attribute
    cache is indexed by a type's version and the address of the attribute's name: when two
    names a request looks up share a slot, each lookup walks the type's MRO instead, so a count
    depends on where the imports landed, by up to 1,800 instructions a request under Flask.
    Each sample's layout is another draw of that, and the median over the samples is quoted.
    """
    _ballast.extend(" " * (i % 97) for i in range(sample * 211))


def child(name: str, n: int) -> None:
    """Build the row named `name`, serve it `WARM_UP` requests, then fork twice: one child
    serves no request and one serves `n`, each exiting at once. Prints `requests pid` for each.

    The two children start from the same state, so the difference of their counts is what the
    `n` requests cost, whatever start-up, imports and the warm-up cost.
    """
    (row,) = [row for row in rows() if row.name == name]
    # `count` names the sample in PYTHONHASHSEED; a child run outside it (bench-check) has none.
    sample = os.environ.get("PYTHONHASHSEED", "")
    _shift_the_heap(int(sample) if sample.isdigit() else 0)
    _import_what_the_row_names(row)
    run = asgi_requests(row) if row.kind == "ASGI" else wsgi_requests(row)
    # The collector's passes come every so many allocations, not per request, and walk every
    # object the heap holds (Mirascope's imports make it large): one lands in a row's requests
    # and misses another's, moving rows by thousands of instructions per request.
    gc.disable()
    run(min(n, WARM_UP))
    for requests in (0, n):
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            run(requests)
            os._exit(0)
        os.waitpid(pid, 0)
        print(requests, pid, flush=True)


# The parent: count each row's two children under cachegrind.

_TOTAL = re.compile(rb"==(\d+)==\s+I\s+refs:\s+([\d,]+)")


_PATH = "/usr/local/bin:/usr/bin:/bin"
_ARGUMENT_WIDTH = 120
# By its full path: the children's fixed PATH need not hold the caller's valgrind.
_VALGRIND = shutil.which("valgrind")


def valgrind_available() -> bool:
    return _VALGRIND is not None


def count(name: str, n: int, sample: int = SAMPLES[0]) -> int:
    """Instructions that `n` requests of row `name` run, in one sample (hash seed and layout)."""
    if _VALGRIND is None:
        raise RuntimeError(
            "valgrind is not installed: `make bench` installs it (Debian's valgrind)"
        )
    command = [
        _VALGRIND,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        name.ljust(_ARGUMENT_WIDTH),  # every row's argument the same size, as the environment
        str(n),
    ]
    # The same few variables whoever runs the count: the environment is copied onto the heap, so
    # its size moves every later object's address, and the hashes of objects hashed by address
    # (each ContextVar's, in every Context lookup) with it: a count under the caller's own
    # environment moved by 400 instructions a request between two shells.
    environment = {"PATH": _PATH, "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": str(sample)}
    done = subprocess.run(
        command,
        capture_output=True,
        env=environment,
        cwd=BENCHMARKS.parent,
        timeout=900,
        check=False,
    )
    totals = {int(pid): int(total.replace(b",", b"")) for pid, total in _TOTAL.findall(done.stderr)}
    children = dict(line.split() for line in done.stdout.decode().splitlines())
    if done.returncode != 0 or set(children) != {"0", str(n)}:
        raise RuntimeError(
            f"Counting {name!r} under cachegrind failed ({done.returncode}):\n"
            + done.stderr.decode(errors="replace")[-2000:]
        )
    return totals[int(children[str(n)])] - totals[int(children["0"])]


def per_request(name: str, requests: int = REQUESTS) -> float:
    """Instructions one request of row `name` costs: the median over `SAMPLES`."""
    return statistics.median(count(name, requests, sample) / requests for sample in SAMPLES)


def fingerprint(requests: int) -> str:
    """What a count depends on: the code it runs, the packages, Python, and the method."""
    spec = importlib.util.find_spec("ops_session")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).parent
    digest = hashlib.sha256(f"{sys.version} {WARM_UP} {requests} {SAMPLES}".encode())
    for package in MEASURED_PACKAGES:
        digest.update(f"{package}=={importlib.metadata.version(package)}".encode())
    children_run = [BENCHMARKS / name for name in ("__init__.py", "instructions.py", "required.py")]
    for path in [*sorted(source.rglob("*.py")), *children_run]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def measure(selected: Sequence[Row], requests: int = REQUESTS) -> dict[Row, float]:
    """Instructions per request of each row, two children at a time, each row's figure kept in
    `CACHE` as soon as it is counted and taken from there when the fingerprint matches."""
    kept = CACHE / f"instructions-{fingerprint(requests)}.json"
    known: dict[str, float] = json.loads(kept.read_text()) if kept.exists() else {}
    lock = threading.Lock()

    def counted(row: Row) -> float:
        if row.name not in known:
            value = per_request(row.name, requests)
            with lock:
                known[row.name] = value
                CACHE.mkdir(exist_ok=True)
                kept.write_text(json.dumps(known, indent=1))
        return known[row.name]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(selected, pool.map(counted, selected), strict=True))


def overhead(counts: dict[Row, float], row: Row) -> float:
    """Instructions per request that a row adds to its bare app with the same id state."""
    return counts[row] - counts[Row(row.kind, BARE, row.ids)]


def ratio_to_required(counts: dict[Row, float], row: Row) -> float:
    return overhead(counts, row) / overhead(counts, Row(row.kind, REQUIRED, row.ids))


def table(counts: dict[Row, float]) -> str:
    """Each row's instructions per request, its overhead over bare, and that over the required
    steps' (where the required steps were counted with the same id state)."""
    lines = [
        "| configuration | id | instructions per request | overhead over bare "
        "| × the required steps' overhead |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row, value in counts.items():
        bare = Row(row.kind, BARE, row.ids)
        required = Row(row.kind, REQUIRED, row.ids)
        added = "—" if row.app == BARE or bare not in counts else f"{overhead(counts, row):+,.0f}"
        multiple = "—"
        if row.app not in (BARE, REQUIRED) and bare in counts and required in counts:
            multiple = f"{ratio_to_required(counts, row):.2f}"
        lines.append(f"| {row.kind}, {row.app} | {row.ids} | {value:,.0f} | {added} | {multiple} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("ROW", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--only", action="append", default=[], help="rows whose name has TEXT")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    options = parser.parse_args(argv)
    if options.child:
        child(options.child[0].rstrip(), int(options.child[1]))
        return 0
    if not valgrind_available():
        parser.error("valgrind is not installed: `make bench` installs it (Debian's valgrind)")
    selected = [row for row in rows() if any(text in row.name for text in options.only or [""])]
    # Each row's overhead needs its bare app and the required steps, with the same ids.
    kinds = {(row.kind, row.ids) for row in selected}
    selected = [
        row
        for row in rows()
        if row in selected or (row.app in (BARE, REQUIRED) and (row.kind, row.ids) in kinds)
    ]
    print(table(measure(selected, options.requests)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
