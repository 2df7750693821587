"""The process-wide session header name: the one definition every carrier reads. Stdlib only.

Two services keep a session between them only when both use the same name, so every part of a
process that writes or reads the id outside a middleware (client hooks, the `ops_session`
propagator, `inject_session`, `continue_session`, the Celery, RQ and arq integrations) asks
`session_header_name()`. It is `set_session_header_name()`'s name, else the
`OPS_SESSION_HEADER_NAME` environment variable's (read once), else `Mirascope-Session-Id`; the
middlewares' `header_name` option takes the same variable under `opentelemetry-instrument`.
"""

from __future__ import annotations

from ._sources import HEADER_NAME
from ._variables import Variable

__all__ = [
    "HEADER_NAME_ENV",
    "SESSION_HEADER_NAME",
    "check_header_name",
    "session_header_name",
    "set_session_header_name",
]

SESSION_HEADER_NAME = "Mirascope-Session-Id"
"""The default HTTP header that carries a session id between services."""

HEADER_NAME_ENV = "OPS_SESSION_HEADER_NAME"
"""The session header name for the whole process, read when no code called
`set_session_header_name()`. Unset or blank: `Mirascope-Session-Id`."""

_configured: str | None = None


def check_header_name(name: object) -> str:
    """`name` when it is an HTTP header name (an RFC 9110 token).

    Raises:
        ValueError: It is not; the message names it.
    """
    if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
        raise ValueError(
            f"Expected an HTTP header name such as {SESSION_HEADER_NAME!r}, got {name!r}: "
            "use letters, digits and '-' only."
        )
    return name


def set_session_header_name(name: str | None) -> None:
    """Set the header that carries the session id, for the whole process.

    Client hooks, the `ops_session` propagator, `inject_session`, `continue_session`,
    `extract_session_id` and the Celery, RQ and arq integrations send and read this name; set
    the same one in every service that shares sessions. It wins over `OPS_SESSION_HEADER_NAME`;
    `None` goes back to that variable, or, when it is unset, to `Mirascope-Session-Id`.

    Args:
        name: An HTTP header name, such as `"X-Conversation-Id"`, or `None`.

    Raises:
        ValueError: `name` is not an HTTP header name.

    Example:
        set_session_header_name("X-Conversation-Id")
    """
    global _configured
    _configured = None if name is None else check_header_name(name)


_from_env = Variable(
    HEADER_NAME_ENV, SESSION_HEADER_NAME, lambda raw: check_header_name(raw.strip())
)


def session_header_name() -> str:
    """The process-wide session header name (see `set_session_header_name`).

    Raises:
        ValueError: `OPS_SESSION_HEADER_NAME` holds no header name; the message names it.
    """
    if _configured is not None:
        return _configured
    return _from_env.get()
