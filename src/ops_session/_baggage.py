"""The session id in W3C baggage: how an incoming `baggage` header is read, and where it may go.

Where a hop carries only OpenTelemetry's context (`OTEL_PROPAGATORS=tracecontext,baggage`), the
session can ride in baggage as `session.id`, the key Datadog and AWS ADOT read. Both halves are
opt-in (the `baggage` option). Stdlib only: the middlewares call `baggage_session_id` with the
header's text; the OpenTelemetry side lives in `_otel_baggage.py`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

__all__ = [
    "BAGGAGE_HEADER_NAME",
    "BAGGAGE_KEY",
    "MAX_BAGGAGE_ENTRIES",
    "MAX_BAGGAGE_LENGTH",
    "baggage_session_id",
]

BAGGAGE_HEADER_NAME = "baggage"
"""The W3C header (and gRPC metadata key) that carries baggage."""

BAGGAGE_KEY = "session.id"
"""The baggage entry that carries the session id; only the id, never the attributes."""

MAX_BAGGAGE_LENGTH = 8192
"""W3C Baggage, 'Limits': a baggage-string longer than this is not read at all."""

MAX_BAGGAGE_ENTRIES = 180
"""W3C Baggage, 'Limits': list-members past this many are not read."""

# W3C Baggage: list-members are separated by "," with optional whitespace around it.
_DELIMITER = re.compile(r"[ \t]*,[ \t]*")


def baggage_session_id(header: str | None) -> str | None:
    """The `session.id` value of a W3C `baggage` header, percent-decoded; `None` if absent.

    The value is returned unchecked: the caller validates it like a session header. A header
    over 8192 characters is ignored whole, only its first 180 list-members are read and
    malformed members are skipped, as OpenTelemetry's `W3CBaggagePropagator` does, so that no
    baggage can make a request fail or cost more than one bounded scan.
    """
    if not header or len(header) > MAX_BAGGAGE_LENGTH or BAGGAGE_KEY not in header:
        return None
    for member in _DELIMITER.split(header, MAX_BAGGAGE_ENTRIES)[:MAX_BAGGAGE_ENTRIES]:
        name, equals, value = member.partition("=")
        if equals and name.strip(" \t") == BAGGAGE_KEY:
            # Properties follow the value after ";" (W3C Baggage, 'list-member').
            value = value.partition(";")[0].strip(" \t")
            return unquote_plus(value) or None
    return None
