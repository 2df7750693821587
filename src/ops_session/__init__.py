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
    is_valid_session_id,
    require_session,
    session,
)
from ._header import session_header_name, set_session_header_name
from ._hosts import OutgoingHosts
from ._install import install
from ._options import SessionOptions
from ._outgoing import inject_session
from ._rules import set_outgoing_carriers, set_outgoing_hosts
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
    "session_header_name",
    "set_outgoing_carriers",
    "set_outgoing_hosts",
    "set_session_header_name",
]
