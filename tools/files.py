"""Reading what another process is still writing."""

from __future__ import annotations

from pathlib import Path


def complete_lines(path: Path) -> list[str]:
    """The lines of `path` that end with a newline; none when it does not exist yet.

    A service appending to the file may be caught between writing a line and its newline (two
    worker processes share one file); the part written so far is left for the next read.
    """
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").split("\n")[:-1]
