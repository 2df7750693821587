"""Every documentation page's commands, and the README's, run as a reader runs them.

See `tests/support/shell.py`. Each page runs in a directory of its own: its titled blocks become
files, its servers start on 127.0.0.1, its client commands run and their output is checked
against the `text` blocks that follow them. Pages whose run has more to prove have a test module
of their own (`DEDICATED`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support.markdown import DOCS, README, ROOT, pages
from ..support.shell import kind, run_page, shell_blocks

pytestmark = pytest.mark.servers

DEDICATED = {
    DOCS / "chat-backend.md": "tests/live/test_chat_recipe.py",
    DOCS / "logging.md": "tests/live/test_walkthrough.py",
}


def runnable(page: Path) -> bool:
    return any(kind(block) in ("server", "client") for block in shell_blocks(page))


PAGES = [page for page in (README, *pages()) if runnable(page) and page not in DEDICATED]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_page_commands_run_as_written(page: Path, tmp_path: Path) -> None:
    with run_page(page, tmp_path) as run:
        assert run.outputs or run.servers


def test_the_dedicated_tests_run_their_pages() -> None:
    for page, test in DEDICATED.items():
        assert runnable(page), f"{page.name} has no commands to run: drop it from DEDICATED"
        assert f'"{page.name}"' in (ROOT / test).read_text(encoding="utf-8")
