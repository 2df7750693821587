"""Incoming session header values that must never be accepted, echoed or logged.

The one list the tests, the soak and `make demo` all send.
"""

from __future__ import annotations

HOSTILE_VALUES: list[tuple[str, bytes, bool]] = [
    # (name, raw header bytes, whether an HTTP client can send it as is)
    ("space", b"a b", True),
    ("comma", b"a,b", True),
    ("semicolon", b"a;b", True),
    ("script", b"<script>alert(1)</script>", True),
    ("129-chars", b"a" * 129, True),
    ("8000-chars", b"a" * 8000, True),
    ("utf-8", "caf\u00e9".encode(), False),
    ("obs-text", b"\xff\xfe", False),
    ("whitespace", b" ", False),
    ("crlf", b"abc\r\nset-cookie: x=1", False),
    ("nul", b"abc\x00", False),
]


def sendable_values() -> list[bytes]:
    """The values an HTTP client sends unchanged."""
    return [raw for _, raw, sendable in HOSTILE_VALUES if sendable]
