"""Sessions for Python web apps: one id per conversation, visit or job, seen by every request."""

from __future__ import annotations

from . import _mirascope
from ._core import (
    SESSION_HEADER_NAME,
    Jsonable,
    SessionContext,
    continue_session,
    current_session,
    extract_session_id,
    generate_session_id,
    inject_session,
    is_valid_session_id,
    require_session,
    session,
)
from ._install import install
from ._options import SessionOptions
from ._outgoing import OutgoingHosts, set_outgoing_hosts
from .asgi import SessionMiddleware
from .wsgi import SessionMiddleware as WSGISessionMiddleware

__version__ = "0.1.0"

# `mirascope.ops` reads its session through a module global: from the moment it is imported,
# it reads ops-session's, so both packages see one session with no call from the app.
_mirascope.share_sessions_with_mirascope()

__all__ = [
    "Jsonable",
    "OutgoingHosts",
    "SESSION_HEADER_NAME",
    "SessionContext",
    "SessionMiddleware",
    "SessionOptions",
    "WSGISessionMiddleware",
    "continue_session",
    "current_session",
    "extract_session_id",
    "generate_session_id",
    "inject_session",
    "install",
    "is_valid_session_id",
    "require_session",
    "session",
    "set_outgoing_hosts",
]
