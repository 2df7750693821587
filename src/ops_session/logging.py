"""Put the current session on log records: a `logging.Filter`, and a structlog processor."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from ._core import attributes_json, current_session


class SessionLogFilter(logging.Filter):
    """Add `session_id` and `session_attributes` (JSON) to every record it sees.

    Outside a session both fields hold `default`, so a format string such as
    `"%(session_id)s %(message)s"` works for startup and lifespan logs too. The filter never drops
    a record.

    Example:
        handler.addFilter(SessionLogFilter())
        # dictConfig: {"filters": {"session": {"()": "ops_session.logging.SessionLogFilter"}}}

    Args:
        name: Passed to `logging.Filter`.
        default: The value of both fields outside a session.
    """

    def __init__(self, name: str = "", *, default: str = "-") -> None:
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        current = current_session()
        if current is None:
            record.session_id = self.default
            record.session_attributes = self.default
        else:
            record.session_id = current.id
            record.session_attributes = attributes_json(current.attributes) or self.default
        return True


def add_session(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that adds `session_id` (and `session_attributes`) inside a session.

    Keys the event already has are kept. Example:
    `structlog.configure(processors=[add_session, structlog.processors.JSONRenderer()])`.
    """
    current = current_session()
    if current is not None:
        event_dict.setdefault("session_id", current.id)
        if current.attributes:
            event_dict.setdefault("session_attributes", current.attributes)
    return event_dict
