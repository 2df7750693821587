"""The hostile header values of `tools/hostile.py`, as pytest parameters."""

from __future__ import annotations

from typing import Any

import pytest
from tools.hostile import HOSTILE_VALUES


def hostile_bytes() -> list[Any]:
    """Every value as raw bytes, as an ASGI scope carries it."""
    return [pytest.param(raw, id=name) for name, raw, _ in HOSTILE_VALUES]


def hostile_text(*, sendable_only: bool = False) -> list[Any]:
    """Every value decoded as latin-1, as a WSGI environ carries it; or only what clients send."""
    return [
        pytest.param(raw.decode("latin-1"), id=name)
        for name, raw, sendable in HOSTILE_VALUES
        if sendable or not sendable_only
    ]
