"""Turn measured results into the tables of docs/benchmarks.md and the chart."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from pathlib import Path

from .load import LoadResult, relative
from .memory import Growth
from .timing import Result, paired_median

BareOf = Callable[[str], str]
"""The name of the bare configuration that a configuration is compared with."""


def find(results: Sequence[Result], name: str) -> Result:
    (result,) = [result for result in results if result.name == name]
    return result


def overhead(results: Sequence[Result], name: str, bare_of: BareOf) -> float:
    """Microseconds a configuration adds to its bare app (paired median)."""
    return paired_median(
        lambda value, bare: value - bare, find(results, name), find(results, bare_of(name))
    )


def overhead_ratio(results: Sequence[Result], name: str, yardstick: str, bare_of: BareOf) -> float:
    """A configuration's overhead as a multiple of the yardstick's: the ratio of the two
    overheads (each a paired median). A median of per-round ratios would be swung by the rounds
    where noise leaves the yardstick's small overhead smaller still."""
    return overhead(results, name, bare_of) / overhead(results, yardstick, bare_of)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def spread(result: Result, scale: float = 1.0, digits: int = 2) -> str:
    return f"{result.low * scale:.{digits}f}–{result.high * scale:.{digits}f}"


def in_process_table(results: Sequence[Result], yardstick: str, bare_of: BareOf) -> str:
    rows = []
    for result in results:
        name = result.name
        if bare_of(name) == name:
            rows.append([name, f"{result.median:.2f}", spread(result), "—", "—"])
        else:
            rows.append(
                [
                    name,
                    f"{result.median:.2f}",
                    spread(result),
                    f"{overhead(results, name, bare_of):+.2f}",
                    f"{overhead_ratio(results, name, yardstick, bare_of):.2f}",
                ]
            )
    header = ["configuration", "µs per request", "min–max", "overhead, µs", f"× {yardstick}"]
    return table(header, rows)


def load_table(results: Sequence[LoadResult], floor: str) -> str:
    """Each row's throughput over the bare app's and over the floor's, as paired medians.

    The one over the configuration a row was loaded beside is its measured ratio; the other is
    derived within each round (see `load.relative`). min–max is the measured ratio's spread.
    """
    bare = results[0].beside  # the control row is loaded beside the bare app
    rows = []
    for result in results:
        to_floor = "—" if result.name == floor else f"{relative(results, result.name, floor):.3f}"
        rows.append(
            [
                result.name,
                "the floor" if result.beside == floor else result.beside,
                f"{relative(results, result.name, bare):.3f}",
                to_floor,
                spread(result.ratio, digits=3),
                f"{result.rate.median:,.0f}",
                f"{result.beside_rate.median:,.0f}",
            ]
        )
    header = ["configuration", "loaded beside", "× bare", "× the floor", "min–max, measured"]
    return table([*header, "requests/s", "beside it, requests/s"], rows)


def core_table(results: Sequence[Result]) -> str:
    rows = [[r.name, f"{r.median * 1000:.0f}", spread(r, 1000, 0)] for r in results]
    return table(["operation", "ns per call", "min–max"], rows)


def memory_table(growth: Sequence[Growth]) -> str:
    rows = [
        [g.name, f"{g.requests:,}", f"{g.after - g.before:,}", f"{g.per_request:.4f}"]
        for g in growth
    ]
    return table(["configuration", "requests", "bytes grown", "bytes per request"], rows)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        if models:
            cpu = f"{models[0].split(':', 1)[1].strip()} × {len(models)}"
    return f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, {cpu}"


def chart(
    path: Path,
    panels: Sequence[tuple[str, Sequence[Result], BareOf]],
) -> None:
    """Horizontal bars of per-request overhead over the bare app, log scale, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(panels), 1, figsize=(9, 3.8 * len(panels)), layout="constrained"
    )
    for axis, (title, results, bare_of) in zip(axes, panels, strict=True):
        shown = [r.name for r in results if bare_of(r.name) != r.name]
        values = [overhead(results, name, bare_of) for name in shown]
        lengths = [max(value, 0.05) for value in values]  # a log scale has no room for <= 0
        colours = ["#1f6fb2" if name.startswith("ops-session") else "#a0a0a0" for name in shown]
        axis.barh(shown, lengths, color=colours)
        for index, (value, length) in enumerate(zip(values, lengths, strict=True)):
            axis.text(length * 1.1, index, f"{value:.1f} µs", va="center", fontsize=8)
        axis.set_xscale("log")
        axis.set_xlim(min(lengths) / 2, max(lengths) * 4)
        axis.invert_yaxis()
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("µs added per request: median over interleaved rounds, log scale")
    figure.savefig(path, dpi=110)
    plt.close(figure)
