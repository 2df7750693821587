"""The package as users get it: a wheel built from this tree, for fresh virtualenvs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(directory: Path) -> Path:
    """Build the wheel into `directory` (pip and hatchling, as a user's install would)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(directory), ROOT],
        check=True,
        timeout=300,
    )
    (built,) = directory.glob("ops_session-*.whl")
    return built
