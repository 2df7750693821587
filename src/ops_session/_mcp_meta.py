"""The session in MCP's `_meta`: the key, how a request gets it, and how a handler continues it.

MCP 2026-07-28 has no protocol session: a connection is not a conversation, and whatever spans
requests travels on each request, in `params._meta` (specification, `basic/index`). This module
holds the rules that `ops_session.mcp` (the official SDK) and `ops_session.fastmcp` share; they
only translate their SDK's objects. Stdlib only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._core import (
    SessionContext,
    activate,
    deactivate,
    extract_session_id,
    is_valid_session_id,
    note_session,
    notify_request_started,
    request_listeners,
)

__all__ = ["SESSION_META_KEY", "carried_session", "with_session_meta"]

SESSION_META_KEY = "io.github.ops-session/session-id"
"""The `_meta` key that carries the session id on MCP requests and notifications.

A vendor key as the specification's `basic/index` asks: a reverse-DNS prefix (the project's home,
github.com/ops-session, reversed) whose second label is not `modelcontextprotocol` or `mcp`, a
slash, and a name of alphanumerics and hyphens that starts and ends with an alphanumeric."""

logger = logging.getLogger("ops_session")


def with_session_meta(params: Mapping[str, Any] | None, session_id: str) -> dict[str, Any] | None:
    """A copy of JSON-RPC `params` whose `_meta` carries `session_id`; `None` to leave them be.

    Params whose `_meta` holds the key already (a caller forwarding another id on purpose, as
    `inject_session` allows) or is not an object are left as they are.
    """
    meta = (params or {}).get("_meta", {})
    if not isinstance(meta, Mapping) or SESSION_META_KEY in meta:
        return None
    return {**(params or {}), "_meta": {**meta, SESSION_META_KEY: session_id}}


@contextmanager
def carried_session(
    meta: object, headers: Mapping[str, str] | None, *, generate: bool
) -> Iterator[SessionContext | None]:
    """Run a block in the session one MCP request carried: its `_meta` key, else its HTTP header.

    Either is input and checked by `is_valid_session_id`. A `_meta` value that is present but
    invalid is not overridden by the header, as the middlewares never let a later place override
    an invalid one. Without a valid id the block runs outside any session, also when the caller's
    context had one (an in-process transport shares it), unless `generate` asks for a new one.
    """
    incoming = _incoming_id(meta, headers)
    context = SessionContext(incoming) if incoming else SessionContext() if generate else None
    token = activate(context)
    try:
        if context is not None and request_listeners:
            notify_request_started(context)
        yield context
    except Exception as error:
        if context is not None:
            # The SDK logs a handler's error after this block ended: name the session there.
            note_session(error, context)
        raise
    finally:
        deactivate(token)


def _incoming_id(meta: object, headers: Mapping[str, str] | None) -> str | None:
    if isinstance(meta, Mapping) and SESSION_META_KEY in meta:
        value, place = meta[SESSION_META_KEY], "_meta session id"
    elif headers is not None:
        value, place = extract_session_id(headers), "session header"
    else:
        return None
    if value is None or isinstance(value, str) and is_valid_session_id(value):
        return value
    # The value is attacker-controlled: keep it out of logs (asgi-correlation-id#71).
    size = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
    logger.debug("Invalid %s in an MCP request (%s): ignored.", place, size)
    return None
