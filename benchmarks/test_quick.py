"""`make bench` in miniature: the in-process suite runs and writes its report, so it cannot rot.

The figures of such a short run mean nothing and are not checked; `make bench` takes the real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tools.loopback import HOST, free_port, pythonpath_with

import ops_session
from benchmarks import (
    anatomy,
    asgi_apps,
    bytecodes,
    core,
    django_apps,
    heap_layout,
    instructions,
    jobs,
    load,
    wsgi_apps,
)
from benchmarks.__main__ import Goal, main


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
    assert "\n## Bytecodes per request: a profile of the middlewares" in text
    for row in bytecodes.rows():
        if row.app != instructions.BARE:
            assert f"| {row.kind}, {row.app} | {row.ids} | +" in text, row
    assert (tmp_path / "benchmarks.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_every_instruction_row_serves_requests_in_process() -> None:
    """The children valgrind counts, run here without it: each row builds and serves."""
    for row in instructions.rows():
        instructions.child(row.name, 2)


def test_the_bytecode_profile_is_exact_and_names_the_middlewares_code() -> None:
    """Bytecodes do not move with the layout: the same row profiles the same twice."""
    row = instructions.Row("ASGI", instructions.OURS, instructions.INVALID)
    first, second = bytecodes.per_request(row), bytecodes.per_request(row)
    assert first == second
    own = {code.co_qualname for code in first if bytecodes.is_middleware_code(code)}
    assert {"SessionMiddleware.__call__", "SessionPolicy.plain_replacement_id"} <= own
    assert not any(name.startswith("serve_asgi") for name in own)


def test_a_goal_missed_at_the_limit_of_the_behaviour_says_so() -> None:
    assert Goal("g", "m", met=True).verdict == "yes"
    assert Goal("g", "m", met=False).verdict == "**no**"
    assert Goal("g", "m", met=False, at_the_limit=True).verdict == (
        "**no**; at the limit of the behaviour"
    )


def test_the_imports_that_should_add_nothing_add_no_bytecode_to_a_request() -> None:
    """Traced each in a python of its own: an import that added work to a request would show."""
    alone = bytecodes.imports_alone()
    for kind in ("ASGI", "WSGI"):
        ours = alone[instructions.Row(kind, instructions.OURS, instructions.VALID)]
        assert ours > 0
        for name in bytecodes.IMPORTED:
            assert alone[instructions.Row(kind, name, instructions.VALID)] == ours, (kind, name)


def test_a_load_server_serves_its_app_through_the_heap_layout_it_is_given() -> None:
    port = free_port()
    target = load.LoadTarget(load.OURS, "ops_session_starlette", (load.SESSION,))
    with load.serving("uvicorn-h11", target, port, heap_shift=7) as server:
        command = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        request = urllib.request.Request(f"http://{HOST}:{port}/")
        request.add_header(*load.SESSION.split(": "))
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers[ops_session.SESSION_HEADER_NAME] == asgi_apps.VALID_ID
    assert heap_layout.APP_PATH.encode() in command
    assert f"{heap_layout.SHIFT}=7".encode() in environ
    assert f"{heap_layout.APP}=benchmarks.server_apps:ops_session_starlette".encode() in environ


def test_the_heap_layout_allocates_its_shift_before_the_app_is_imported() -> None:
    script = (
        "import sys, benchmarks.heap_layout as layout\n"
        "imported_first = 'benchmarks.server_apps' in sys.modules\n"
        "app = layout.app\n"
        "served = sys.modules['benchmarks.server_apps'].bare_flask\n"
        "print(len(layout._ballast), imported_first, app is served)\n"
    )
    env = {**os.environ, "PYTHONPATH": pythonpath_with(ops_session)}
    env |= heap_layout.environment("benchmarks.server_apps:bare_flask", 5)
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.split() == [str(5 * 211), "False", "True"]
