"""The README is the front door: short, the two commands first, every link leading somewhere.

Its code blocks are the documentation's too: tests/test_docs.py runs its Python blocks and checks
its install commands, and tests/live/test_doc_commands.py runs its quick starts as pasted, servers
and curl included.
"""

from __future__ import annotations

import re
from pathlib import Path

from .support.markdown import README, ROOT, blocks
from .support.shell import kind, shell_blocks

TEXT = README.read_text(encoding="utf-8")
# [text](target) and ![alt](target), outside code blocks (the README's have no such links).
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_the_two_commands_come_within_the_first_40_lines() -> None:
    first = TEXT.splitlines()[:40]
    for command in ("make demo", "make test"):
        assert any(line.startswith(command) for line in first), command


def test_the_readme_stays_a_welcome_and_leaves_the_reference_to_the_site() -> None:
    assert len(TEXT.splitlines()) <= 165


def test_there_is_a_quick_start_that_runs_for_each_framework() -> None:
    servers = {block.source.split()[0] for block in shell_blocks(README) if kind(block) == "server"}
    assert servers == {"uvicorn", "gunicorn", "django-admin"}
    for heading in ("FastAPI", "Flask", "Django"):
        assert f"## Quick start: {heading}\n" in TEXT


def slug(heading: str) -> str:
    """The anchor Python-Markdown's `toc` gives a heading."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    fenced = {line for block in blocks(page) for line in block.source.splitlines()}
    return {slug(line.lstrip("#")) for line in lines if line.startswith("#") and line not in fenced}


def test_every_link_leads_to_a_file_and_its_anchor() -> None:
    targets = _LINK.findall(TEXT)
    assert len(targets) >= 20
    for target in targets:
        assert not target.startswith(("http:", "https:")), f"{target}: link into the repository"
        path, _, anchor = target.partition("#")
        page = ROOT / path
        assert page.is_file(), target
        if anchor:
            assert anchor in anchors(page), target
