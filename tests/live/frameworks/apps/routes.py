"""What every framework app answers, so that one harness checks them all.

- `GET /session`: JSON `{"id": <current session id>, "request_header": <the session header the
  handler sees>}`.
- `GET /stream`: `LINES` lines of the current session id, each made when the server asks for it.
- `GET /sleep?delay=<seconds>`: JSON `{"first": <id>, "second": <id>}`, read before and after
  a pause, for the concurrency check.
- `GET /error`: raises `RuntimeError`, so that the framework answers 500.
- websocket `/ws` (where the framework has them): sends the id, then answers each text message
  with `<text>:<id>`.
"""

from __future__ import annotations

from ops_session import SESSION_HEADER_NAME, current_session

LINES = 5
DEFAULT_DELAY = 0.02
HEADER = SESSION_HEADER_NAME


def current_id() -> str | None:
    current = current_session()
    return current.id if current else None


def session_payload(request_header: str | None) -> dict[str, str | None]:
    return {"id": current_id(), "request_header": request_header}


def line() -> str:
    return f"{current_id()}\n"


def echo(text: str) -> str:
    return f"{text}:{current_id()}"


class HandlerError(RuntimeError):
    """What `/error` raises: no framework handles it, so each answers with its 500."""

    def __init__(self) -> None:
        super().__init__("unhandled on purpose")
