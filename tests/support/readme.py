"""The fenced code blocks of the README and of other Markdown pages, as markdown-it parses them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@dataclass(frozen=True)
class CodeBlock:
    language: str
    line: int
    source: str
    page: str = "README.md"  # relative to the repository

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def code_blocks(language: str, page: Path = README) -> list[CodeBlock]:
    """Every fenced block of `language` in `page` (the README by default), in order."""
    tokens = MarkdownIt().parse(page.read_text(encoding="utf-8"))
    name = page.relative_to(ROOT).as_posix()
    return [
        CodeBlock(language, token.map[0] + 1 if token.map else 0, token.content, name)
        for token in tokens
        if token.type == "fence" and token.info.strip() == language
    ]
