"""Every Python block of the framework recipes in docs/frameworks runs as pasted and passes mypy.

A page's blocks run in order, each in a fresh interpreter, in a directory of the page's own. A
block whose first line names a file (`# mysite/settings.py`) is also written there, so that the
blocks after it import it as a user's project would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .support.readme import ROOT, CodeBlock, code_blocks

FRAMEWORKS = ROOT / "docs" / "frameworks"
# The recipes of issue 31; the site's FastAPI, Flask and Django pages have their own tests.
RECIPES = [
    "aiohttp.md", "bottle.md", "channels.md", "falcon.md", "fastapi-mounts.md", "litestar.md",
    "pyramid.md", "quart.md", "sanic.md",
]  # fmt: skip
PAGES = [FRAMEWORKS / name for name in ["index.md", *RECIPES]]
FILE_NAME = re.compile(r"# ([\w/]+\.py)\n")
# Frameworks that ship no type information: their decorators are untyped.
UNTYPED_DECORATORS = {"bottle.md"}


def blocks(page: Path) -> list[CodeBlock]:
    return code_blocks("python", page)


def write_named_file(block: CodeBlock, directory: Path) -> Path | None:
    named = FILE_NAME.match(block.source)
    if named is None:
        return None
    path = directory / named.group(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.source, encoding="utf-8")
    return path


def test_every_recipe_is_listed_and_has_python() -> None:
    index = (FRAMEWORKS / "index.md").read_text(encoding="utf-8")
    for name in RECIPES:
        assert f"]({name})" in index, name
        assert blocks(FRAMEWORKS / name), f"{name} has no Python block"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_page_blocks_run_as_pasted(page: Path, tmp_path: Path) -> None:
    for block in blocks(page):
        write_named_file(block, tmp_path)
        ran = subprocess.run(
            [sys.executable, "-c", block.source],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert ran.returncode == 0, f"{block}:\n{ran.stderr}"


def test_page_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    for page in PAGES:
        directory = tmp_path / page.stem.replace("-", "_")
        for number, block in enumerate(blocks(page)):
            directory.mkdir(exist_ok=True)
            if write_named_file(block, directory) is None:
                (directory / f"block_{number}.py").write_text(block.source, encoding="utf-8")
        if not directory.exists():
            continue
        options = ["--allow-untyped-decorators"] if page.name in UNTYPED_DECORATORS else []
        checked = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--strict",
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--cache-dir",
                str(tmp_path / ".mypy_cache"),
                *options,
                ".",
            ],  # fmt: skip
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, f"{page.name}:\n{checked.stdout}"
