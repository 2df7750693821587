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


# (test id, Cookie header bytes): each names the `sid` cookie, and none holds a valid id.
_HOSTILE_COOKIES: list[tuple[str, bytes]] = [
    ("script", b"sid=<script>alert(1)</script>"),
    ("semicolon-in-quotes", b'sid="a;b"'),
    ("unbalanced-quote", b'sid="chat-1'),
    ("octal-escape", b'sid="\\141\\142"'),
    ("comma", b"sid=a,b"),
    ("space", b"sid=a b"),
    ("percent-encoded", b"sid=chat%2D1"),
    ("crlf", b"sid=a\r\nset-cookie: x=1"),
    ("nul", b"sid=a\x00"),
    ("obs-text", b"sid=\xff\xfe"),
    ("129-chars", b"sid=" + b"a" * 129),
    ("quoted-space", b'sid=" a"'),
    ("backslash", b"sid=a\\b"),
    ("first-bad-second-good", b"sid=<x>; sid=good-1"),
]


def hostile_cookie_headers() -> list[Any]:
    """Cookie headers whose `sid` cookie must be refused, as raw bytes."""
    return [pytest.param(raw, id=name) for name, raw in _HOSTILE_COOKIES]
