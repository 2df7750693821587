"""Every extra, and `all`, installed alone into a fresh virtualenv, works with its real server.

The package is built once into a wheel; each extra gets a virtualenv of its own, where pip
resolves the extra's requirements as a user's `pip install 'ops-session[EXTRA]'` would (the
test environment's pins do not apply). `tests/support/extras_smoke.py` then uses the extra
against a server on 127.0.0.1: an echo server, aiohttp's and Django's own servers, or a real
`redis-server` for Celery, RQ and arq (issue 27, point 19: `[all]` could not publish to Redis).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tools.loopback import ROOT
from tools.redis_server import redis_server

from ..support.extras_smoke import CHECKS

pytestmark = [pytest.mark.extras, pytest.mark.redis]

EXTRAS = sorted(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
)
SMOKE = ROOT / "tests" / "support" / "extras_smoke.py"
INSTALL_TIMEOUT = 300


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as users get it: a wheel built from this tree."""
    directory = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(directory), ROOT],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    (built,) = directory.glob("ops_session-*.whl")
    return built


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def test_every_extra_has_a_smoke_check() -> None:
    assert set(EXTRAS) - {"all"} == set(CHECKS)


@pytest.mark.parametrize("extra", EXTRAS)
def test_the_extra_installed_alone_works_with_its_server(
    extra: str, wheel: Path, redis_url: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    # No pip inside: the test environment's pip installs into it (`pip --python`).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"ops-session[{extra}] @ {wheel.as_uri()}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    ran = subprocess.run(
        [str(python), str(SMOKE), redis_url, extra],
        cwd=tmp_path,  # never the repository: only what the extra installed can be imported
        env={**os.environ, "OTEL_PROPAGATORS": "ops_session", "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    checked = sorted(CHECKS) if extra == "all" else [extra]
    reported = [line for line in ran.stdout.splitlines() if line.endswith(": ok")]  # RQ logs too
    assert reported == [f"{name}: ok" for name in checked]
