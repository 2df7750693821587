"""The release: `python -m build` makes a wheel and an sdist that `twine check` accepts, whose
metadata agree with the one version source (`ops_session.__version__`) and the changelog, and
whose wheel works in a fresh virtualenv with nothing else installed.

The build runs without isolation, with the backend the test group installs (hatchling), so that
it needs no network; a release would run the same `python -m build` with isolation.
"""

from __future__ import annotations

import datetime
import email.parser
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

import ops_session

from .support.markdown import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = ops_session.__version__
# The changelog's release headings, Keep a Changelog style: `## [0.1.0] - 2026-12-02`.
RELEASE = re.compile(r"^## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.MULTILINE)


@dataclass(frozen=True)
class Distributions:
    wheel: Path
    sdist: Path


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    ran = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, f"{command}:\n{ran.stdout}\n{ran.stderr}"
    return ran.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distributions]:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out)
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    yield Distributions(wheel, sdist)


def metadata(text: str) -> Message:
    return email.parser.Parser().parsestr(text)


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        return metadata(archive.read(f"ops_session-{VERSION}.dist-info/METADATA").decode())


def test_twine_accepts_both_distributions(built: Distributions) -> None:
    checked = run(sys.executable, "-m", "twine", "check", "--strict", built.wheel, built.sdist)
    assert checked.count("PASSED") == 2


def test_the_distributions_carry_the_one_version(built: Distributions) -> None:
    assert built.wheel.name == f"ops_session-{VERSION}-py3-none-any.whl"
    assert built.sdist.name == f"ops_session-{VERSION}.tar.gz"
    with tarfile.open(built.sdist) as archive:
        member = archive.extractfile(f"ops_session-{VERSION}/PKG-INFO")
        assert member is not None
        sdist = metadata(member.read().decode())
    for found in (wheel_metadata(built.wheel), sdist):
        assert found["Name"] == "ops-session"
        assert found["Version"] == VERSION
        assert found["Requires-Python"] == PYPROJECT["project"]["requires-python"]
        assert set(found.get_all("Provides-Extra") or []) == set(
            PYPROJECT["project"]["optional-dependencies"]
        )
        assert found["Description-Content-Type"] == "text/markdown"
        # The core needs nothing: every requirement belongs to an extra.
        assert all("extra ==" in line for line in found.get_all("Requires-Dist") or [])


def test_the_wheel_holds_the_package_typed_and_its_entry_points(built: Distributions) -> None:
    with zipfile.ZipFile(built.wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(f"ops_session-{VERSION}.dist-info/entry_points.txt").decode()
    modules = {path.name for path in (ROOT / "src" / "ops_session").glob("*.py")}
    assert {name.removeprefix("ops_session/") for name in names if name.endswith(".py")} == modules
    assert "ops_session/py.typed" in names
    assert not [name for name in names if name.startswith(("tests/", "docs/"))]
    assert "ops_session = ops_session._propagator:SessionPropagator" in entry_points
    assert "ops_session = ops_session.instrumentation:SessionInstrumentor" in entry_points


def test_the_sdist_holds_what_make_test_needs(built: Distributions) -> None:
    with tarfile.open(built.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("pyproject.toml", "Makefile", "mkdocs.yml", "CHANGELOG.md", "LICENSE"):
        assert needed in names
    for folder in ("src/ops_session/", "tests/", "docs/", "examples/", "tools/"):
        assert any(name.startswith(folder) for name in names), folder
    assert not [name for name in names if name.startswith((".venv", "site/", "dist/"))]


def test_the_wheel_works_in_a_fresh_virtualenv(built: Distributions, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", fresh)
    python = fresh / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check")
    run(*pip, "install", "--quiet", "--no-deps", "--no-index", built.wheel)
    # Nothing but the standard library and the wheel: the core, both middlewares and logging
    # work, the integrations say which extra they need, and the version is the one source's.
    code = """
import importlib.metadata, ops_session, ops_session.asgi, ops_session.logging, ops_session.wsgi
with ops_session.session(id="chat-42"):
    assert ops_session.inject_session({}) == {"Mirascope-Session-Id": "chat-42"}
try:
    import ops_session.otel
except ImportError as error:
    assert "ops-session[otel]" in str(error), error
else:
    raise AssertionError("ops_session.otel imported without OpenTelemetry")
print(ops_session.__version__, importlib.metadata.version("ops-session"))
"""
    assert run(python, "-I", "-c", code).split() == [VERSION, VERSION]


def test_the_changelog_opens_with_this_version_dated() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = list(RELEASE.finditer(changelog))
    assert releases, "CHANGELOG.md has no dated release entry"
    newest = releases[0]
    assert newest["version"] == VERSION
    assert datetime.date.fromisoformat(newest["date"]) <= datetime.date.today()
    dates = [datetime.date.fromisoformat(release["date"]) for release in releases]
    assert dates == sorted(dates, reverse=True)
