"""`make bench` in miniature: the in-process suite runs and writes its report, so it cannot rot.

The figures of such a short run mean nothing and are not checked; `make bench` takes the real ones.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import anatomy, asgi_apps, core, django_apps, instructions, jobs, wsgi_apps
from benchmarks.__main__ import main


def test_quick_bench_writes_every_table_and_the_chart(tmp_path: Path) -> None:
    assert main(["--quick", "--no-load", "--output", str(tmp_path)]) == 0

    text = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    headings = ["Goals", "In-process ASGI", "In-process WSGI", "The core alone", "Memory"]
    extra_headings = ["In-process WSGI: a minimal Django view", "Background jobs: one Celery task"]
    for heading in [*headings, *extra_headings]:
        assert f"\n## {heading}" in text
    names = [
        *asgi_apps.configurations(),
        *anatomy.asgi_configurations(),
        *anatomy.wsgi_configurations(),
        *wsgi_apps.configurations(),
        *django_apps.configurations(),
        *core.samplers(1),
        *jobs.samplers(1),
    ]
    for name in names:
        assert f"| {name} | " in text, name
    assert text.count("| yes |") + text.count("| **no** |") == 5
    assert (tmp_path / "benchmarks.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_every_instruction_row_serves_requests_in_process() -> None:
    """The children valgrind counts, run here without it: each row builds and serves."""
    for row in instructions.rows():
        instructions.child(row.name, 2)
