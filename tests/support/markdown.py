"""The fenced code blocks of the README and of the documentation pages, as markdown-it parses them.

A block's info string is its language, optionally followed by attributes in the form the site's
Markdown (pymdownx.superfences) reads: ```` ```python title="app.py" ```` names the file the
block is, so that the tests write it under that name before running the page's commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_TITLE = re.compile(r'\btitle="([^"]+)"')


@dataclass(frozen=True)
class CodeBlock:
    path: Path
    language: str
    line: int
    source: str
    title: str | None = None
    """The file name the block is (`title="app.py"`), if it is one."""

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """Every Markdown page of the documentation site, in path order."""
    return sorted(DOCS.rglob("*.md"))


@cache
def blocks(path: Path) -> tuple[CodeBlock, ...]:
    """Every fenced block of a Markdown file, in order."""
    tokens = MarkdownIt().parse(path.read_text(encoding="utf-8"))
    found = []
    for token in tokens:
        if token.type != "fence":
            continue
        language, _, attributes = token.info.strip().partition(" ")
        title = _TITLE.search(attributes)
        line = token.map[0] + 1 if token.map else 0
        found.append(
            CodeBlock(path, language, line, token.content, title.group(1) if title else None)
        )
    return tuple(found)
