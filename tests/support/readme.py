"""The README's fenced code blocks, as markdown-it parses them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class CodeBlock:
    language: str
    line: int
    source: str

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def code_blocks(language: str) -> list[CodeBlock]:
    """Every fenced block of `language` in the README, in order."""
    tokens = MarkdownIt().parse(README.read_text(encoding="utf-8"))
    return [
        CodeBlock(language, token.map[0] + 1 if token.map else 0, token.content)
        for token in tokens
        if token.type == "fence" and token.info.strip() == language
    ]
