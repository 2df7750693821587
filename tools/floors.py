"""Check that every `>=` of pyproject.toml is the version a lowest-direct resolution installs.

`make floors` resolves the extras and the test and lint groups with
`uv pip compile --resolution lowest-direct` on the oldest Python the package claims, and calls

    python -m tools.floors REQUIREMENTS

on the result. A floor that the resolution had to raise (because another requirement needs more,
or because that release cannot be installed) is a claim no test backs: this names each one and
exits non-zero, so that the floor is raised in pyproject.toml rather than left untested.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CHECKED_GROUPS = ("test", "lint")
"""The dependency groups installed at their floors (`lint` is pinned); `bench` serves
`make bench` only."""

_PINNED = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)", re.MULTILINE)


def declared_floors(pyproject: dict[str, object]) -> Iterator[tuple[str, str, Version]]:
    """(where, requirement, floor) for every requirement with a `>=` in the checked places."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    places: list[tuple[str, list[object]]] = [
        (f"extra {name}", requirements)
        for name, requirements in project["optional-dependencies"].items()
    ]
    groups = pyproject["dependency-groups"]
    assert isinstance(groups, dict)
    places += [(f"group {name}", groups[name]) for name in CHECKED_GROUPS]
    for where, requirements in places:
        for text in requirements:
            if not isinstance(text, str):
                continue  # {include-group = ...}: checked where it is defined
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "ops-session":
                continue  # the `all` extra names the others
            for specifier in requirement.specifier:
                if specifier.operator == ">=":
                    yield where, text, Version(specifier.version)


def resolved_versions(requirements: str) -> dict[str, Version]:
    return {
        canonicalize_name(name): Version(version) for name, version in _PINNED.findall(requirements)
    }


def untested_floors(pyproject: dict[str, object], requirements: str) -> list[str]:
    """One line per floor the resolution did not install as declared."""
    resolved = resolved_versions(requirements)
    problems = []
    for where, text, floor in declared_floors(pyproject):
        name = canonicalize_name(Requirement(text).name)
        installed = resolved.get(name)
        if installed is None:
            problems.append(f"{where}: {text!r} is missing from the resolution")
        elif installed != floor:
            problems.append(
                f"{where}: {text!r} resolves to {installed} at the lowest; raise the floor to "
                f"{installed}, or lower what keeps it from {floor}"
            )
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tools.floors REQUIREMENTS", file=sys.stderr)
        return 2
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    problems = untested_floors(pyproject, Path(argv[0]).read_text(encoding="utf-8"))
    for problem in problems:
        print(problem, file=sys.stderr)
    count = sum(1 for _ in declared_floors(pyproject))
    print(f"floors: {count - len(problems)} of {count} are what lowest-direct installs")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
