"""What a middleware keeps between requests, to check that requests leave nothing on it."""

from __future__ import annotations

from typing import Any

# The session header of the requests sent: none, valid, invalid, not even text.
SESSION_HEADER_VALUES: list[bytes | None] = [None, b"valid-1", b"not valid", b"\xff"]


def snapshot(middleware: Any) -> dict[str, Any]:
    """Every slot of the middleware and of its policy: what could carry state between requests."""
    state = {}
    for owner in (middleware, middleware.policy):
        for slot in type(owner).__slots__:
            state[f"{type(owner).__name__}.{slot}"] = getattr(owner, slot)
    return state
