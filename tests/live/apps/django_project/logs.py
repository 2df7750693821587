"""A logging handler that keeps formatted lines in memory, so views and tests can read them."""

from __future__ import annotations

import logging
import threading
from collections import deque

_lines: deque[str] = deque(maxlen=10_000)
_lock = threading.Lock()


class RecordedLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with _lock:
            _lines.append(line)


def lines() -> list[str]:
    with _lock:
        return list(_lines)
