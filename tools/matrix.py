"""Run the test suite in each given virtualenv, one after another, and print a table of the runs.

    python -m tools.matrix .venv-py3.11 .venv-py3.12 .venv-floors -- [pytest arguments]

`make matrix` builds the virtualenvs (one per claimed Python, and the floors one) and calls this.
Each run is the venv's own `python -m pytest`, so its interpreter and its installed versions are
what is tested. The table gives the interpreter, the versions of the libraries whose range the
package claims, the outcome and the wall time. The exit status is non-zero if any run failed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The libraries of the extras, and the frameworks the middlewares are tested under.
SHOWN = [
    "aiohttp", "arq", "celery", "django", "httpx", "opentelemetry-sdk", "requests", "rq",
    "starlette", "fastapi", "flask", "litestar", "quart", "falcon", "sanic", "pyramid",
    "channels", "mirascope",
]  # fmt: skip
_VERSIONS = f"""
import importlib.metadata as metadata, json, platform
versions = {{}}
for name in {SHOWN!r}:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps({{"python": platform.python_version(), **versions}}))
"""
_SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    venv: str
    versions: dict[str, str]
    summary: str
    seconds: float
    ok: bool


def run(venv: str, pytest_arguments: list[str]) -> Run:
    python = str(ROOT / venv / "bin" / "python")
    shown = subprocess.run(
        [python, "-c", _VERSIONS], capture_output=True, text=True, check=True, cwd=ROOT
    )
    print(f"\n=== {venv} ===", flush=True)
    started = time.monotonic()
    output: list[str] = []
    with subprocess.Popen(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as tested:
        assert tested.stdout is not None
        for line in tested.stdout:  # shown as it comes: a CI log that shows where a run is
            print(line, end="", flush=True)
            output.append(line)
    seconds = time.monotonic() - started
    found = _SUMMARY.findall("".join(output))
    return Run(
        venv,
        json.loads(shown.stdout),
        found[-1] if found else f"pytest exited {tested.returncode}",
        seconds,
        tested.returncode == 0,
    )


def table(runs: list[Run]) -> str:
    names = ["python", *(name for name in SHOWN if any(name in run.versions for run in runs))]
    lines = [
        "| run | " + " | ".join(names) + " | result | time |",
        "| --- " * (len(names) + 3) + "|",
    ]
    for done in runs:
        cells = [done.versions.get(name, "-") for name in names]
        minutes, seconds = divmod(round(done.seconds), 60)
        lines.append(
            f"| {done.venv} | "
            + " | ".join(cells)
            + f" | {done.summary} | {minutes}m{seconds:02d}s |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    venvs, pytest_arguments = argv[:split], argv[split + 1 :]
    if not venvs:
        print("usage: python -m tools.matrix VENV... [-- PYTEST_ARGUMENTS]", file=sys.stderr)
        return 2
    runs = [run(venv, pytest_arguments) for venv in venvs]
    print("\n" + table(runs))
    failed = [done.venv for done in runs if not done.ok]
    if failed:
        print(f"\nfailed in: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
