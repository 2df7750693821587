"""Put the current session on log records: a record factory, a `logging.Filter`, structlog.

Every record gets `session_id` and `session_attributes` (JSON), so that a format string such as
`"%(session_id)s %(message)s"` works. Two ways to add them, for two setups:

- `install_record_factory()` stamps every record when it is created, whatever logger makes it
  and whatever handler formats it (OpenTelemetry's logging instrumentation works this way). The
  fields are fixed where the log call ran, so records that cross a `QueueHandler` keep them.
- `SessionLogFilter` stamps the records that pass one handler (or logger) it is added to.

Fields a record already has (`extra={"session_id": ...}`, or a stamp made earlier) are kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

from ._core import attributes_json, current_session

_RecordFactory = Callable[..., logging.LogRecord]
_factory_lock = threading.Lock()
_installed: _SessionRecordFactory | None = None


def _stamp(record: logging.LogRecord, default: str) -> None:
    fields = record.__dict__
    if "session_id" in fields and "session_attributes" in fields:
        return
    current = current_session()
    if current is None:
        fields.setdefault("session_id", default)
        fields.setdefault("session_attributes", default)
    else:
        fields.setdefault("session_id", current.id)
        fields.setdefault("session_attributes", attributes_json(current.attributes) or default)


class SessionLogFilter(logging.Filter):
    """Add `session_id` and `session_attributes` (JSON) to every record it sees.

    Outside a session both fields hold `default`, so startup and lifespan logs format too. Fields
    the record already has are kept. The filter never drops a record. Added to a logger, it sees
    only that logger's own records, not its children's: to cover every logger, add it to the
    handler, or use `install_record_factory()`.

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
        _stamp(record, self.default)
        return True


class _SessionRecordFactory:
    """Wraps the record factory that was installed before it, and stamps what it makes."""

    __slots__ = ("wrapped", "default")

    def __init__(self, wrapped: _RecordFactory, default: str) -> None:
        self.wrapped = wrapped
        self.default = default

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        _stamp(record, self.default)
        return record


def install_record_factory(*, default: str = "-") -> None:
    """Stamp `session_id` and `session_attributes` on every log record the process creates.

    Wraps the current `logging.getLogRecordFactory()`, so that factories installed before (such
    as OpenTelemetry's) keep working. Calling it again changes `default`, and puts the stamping
    back when another library has since restored a factory it saved before ours (OpenTelemetry's
    logging instrumentation does on `uninstrument()`), which left records without `session_id`.

    Args:
        default: The value of both fields outside a session.
    """
    global _installed
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if isinstance(current, _SessionRecordFactory):
            current.default = default
            _installed = current
            return
        # None installed, or ours was dropped: wrap what is there now. Should ours still sit
        # below another wrapper, records are stamped twice, which changes nothing (`_stamp`).
        _installed = _SessionRecordFactory(current, default)
        logging.setLogRecordFactory(_installed)


def uninstall_record_factory() -> None:
    """Undo `install_record_factory()`; without one installed, do nothing.

    Raises:
        RuntimeError: Another factory was installed on top of ours since: uninstall it first.
    """
    global _installed
    with _factory_lock:
        if _installed is None:
            return
        if logging.getLogRecordFactory() is not _installed:
            raise RuntimeError(
                "Another log record factory was installed after ops_session's; uninstall it "
                "first, then call uninstall_record_factory()."
            )
        logging.setLogRecordFactory(_installed.wrapped)
        _installed = None


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
