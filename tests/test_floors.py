"""`tools/floors.py`: which `>=` of pyproject.toml a lowest-direct resolution did not install."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tools.floors import ROOT, declared_floors, untested_floors

PYPROJECT = """
[project]
optional-dependencies.web = ["aiohttp>=3.10", "ops-session[other]"]
optional-dependencies.other = ["otel-api>=1.27,<2", "plain"]
[dependency-groups]
test = ["celery[redis]>=5.3", "kombu<5.6", {include-group = "lint"}]
lint = ["mypy>=1.13"]
bench = ["matplotlib>=3.9"]
"""
RESOLVED = """
aiohttp==3.10.0
    # via ops-session
celery==5.3.0
kombu==5.5.4
mypy==1.13.0
otel-api==1.38.0
plain==1.0
"""


def test_names_each_floor_the_resolution_raised_or_left_out() -> None:
    pyproject = tomllib.loads(PYPROJECT)
    assert untested_floors(pyproject, RESOLVED) == [
        "extra other: 'otel-api>=1.27,<2' resolves to 1.38.0 at the lowest; raise the floor to "
        "1.38.0, or lower what keeps it from 1.27"
    ]
    assert untested_floors(pyproject, RESOLVED.replace("celery==5.3.0\n", "")) == [
        "extra other: 'otel-api>=1.27,<2' resolves to 1.38.0 at the lowest; raise the floor to "
        "1.38.0, or lower what keeps it from 1.27",
        "group test: 'celery[redis]>=5.3' is missing from the resolution",
    ]


def test_checks_the_extras_and_the_test_and_lint_groups_only() -> None:
    checked = [text for _, text, _ in declared_floors(tomllib.loads(PYPROJECT))]
    assert checked == ["aiohttp>=3.10", "otel-api>=1.27,<2", "celery[redis]>=5.3", "mypy>=1.13"]


def test_the_projects_own_floors_are_all_checked() -> None:
    pyproject = tomllib.loads((Path(ROOT) / "pyproject.toml").read_text(encoding="utf-8"))
    checked = {text.split(">=")[0] for _, text, _ in declared_floors(pyproject)}
    assert {"aiohttp", "django", "celery", "opentelemetry-sdk", "pytest", "litestar"} <= checked
