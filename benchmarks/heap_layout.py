"""Serve a load benchmark's app at a heap layout of the run's choosing.

A server given `benchmarks.heap_layout:app` imports this module, which first allocates, and
keeps, `BENCHMARK_HEAP_SHIFT` times 211 small strings; `app` then imports the app named in
`BENCHMARK_SERVED_APP` ("module:attribute"). Everything that import brings (the middleware, the
framework) lands at addresses of that shift's own.

Where code and its objects land moves a server's throughput for the whole life of the
process: CPython's type-attribute cache is indexed by the address of an attribute's name, and
two names a request looks up that share a slot make each lookup walk the type's MRO instead.
Under granian, one middleware class copied unchanged into another module measured 1.016 to
1.025 times the original, in runs where the original beside a second copy of itself measured
0.995. Without a shift, every process of an app gets the same layout, so more runs do not
average that out; with one drawn for each process, each set of fresh processes is another
draw, as each sample of the instruction counts is.
"""

from __future__ import annotations

import importlib
import os

SHIFT = "BENCHMARK_HEAP_SHIFT"
APP = "BENCHMARK_SERVED_APP"
SHIFTS = 61  # a shift is drawn from range(SHIFTS)
APP_PATH = f"{__name__}:app"

# Allocated on import, before anything asks for `app`: in a process that names no shift
# (the benchmark's own), none.
_ballast = [" " * (i % 97) for i in range(int(os.environ.get(SHIFT, "0")) * 211)]


def environment(app: str, shift: int) -> dict[str, str]:
    """What a server's environment needs for `APP_PATH` to serve `app` at `shift`."""
    return {APP: app, SHIFT: str(shift)}


def __getattr__(name: str) -> object:
    """`app`: the app named in `BENCHMARK_SERVED_APP`, imported after the ballast."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if APP not in os.environ:
        raise RuntimeError(f"{APP_PATH} serves the app named in {APP}, and none is named")
    module, _, attribute = os.environ[APP].partition(":")
    return getattr(importlib.import_module(module), attribute)
