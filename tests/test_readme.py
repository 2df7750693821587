"""Every Python block of the README runs as pasted and passes mypy strict.

Each block runs in a fresh interpreter, so that what it configures (a global tracer provider, a
log record factory) stays out of the other tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .support.readme import CodeBlock, code_blocks

EXAMPLES = code_blocks("python")


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_readme_block_runs_as_pasted(example: CodeBlock) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", example.source], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr


def test_readme_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    assert len(EXAMPLES) >= 8
    for number, example in enumerate(EXAMPLES):
        (tmp_path / f"block_{number}.py").write_text(example.source, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
