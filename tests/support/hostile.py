"""Incoming session header values that must never be accepted, echoed or logged."""

from __future__ import annotations

from typing import Any

import pytest

# (test id, raw header bytes, whether an HTTP client can send it as is)
_HOSTILE: list[tuple[str, bytes, bool]] = [
    ("space", b"a b", True),
    ("comma", b"a,b", True),
    ("script", b"<script>alert(1)</script>", True),
    ("129-chars", b"a" * 129, True),
    ("8000-chars", b"a" * 8000, True),
    ("utf-8", "caf\u00e9".encode(), False),
    ("obs-text", b"\xff\xfe", False),
    ("whitespace", b" ", False),
    ("crlf", b"abc\r\nset-cookie: x=1", False),
    ("nul", b"abc\x00", False),
]


def hostile_bytes() -> list[Any]:
    """Every value as raw bytes, as an ASGI scope carries it."""
    return [pytest.param(raw, id=name) for name, raw, _ in _HOSTILE]


def hostile_text(*, sendable_only: bool = False) -> list[Any]:
    """Every value decoded as latin-1, as a WSGI environ carries it; or only what clients send."""
    return [
        pytest.param(raw.decode("latin-1"), id=name)
        for name, raw, sendable in _HOSTILE
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
