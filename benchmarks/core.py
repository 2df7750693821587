"""The core alone: entering and leaving a session, reading it, finding the header in a mapping."""

from __future__ import annotations

import timeit
import uuid
from collections.abc import Callable
from contextvars import Context, ContextVar

from ops_session import (
    SESSION_HEADER_NAME,
    current_session,
    extract_session_id,
    generate_session_id,
    session,
)

from .asgi_apps import VALID_ID
from .timing import Sampler, per_call_microseconds

_plain_var: ContextVar[object] = ContextVar("plain", default=None)

# Twenty headers as a framework's header mapping holds them, the session header among them.
TWENTY_HEADERS: dict[str, str] = {
    **{f"x-custom-{index}": f"value-{index}" for index in range(10)},
    "host": "api.example.com",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "accept": "application/json",
    "accept-language": "en-GB,en;q=0.9",
    "accept-encoding": "gzip, deflate, br, zstd",
    "referer": "https://app.example.com/chat/42",
    "origin": "https://app.example.com",
    "x-forwarded-for": "203.0.113.7",
    "connection": "keep-alive",
    "mirascope-session-id": VALID_ID,
}


def contextvar_get_plus_a_call() -> object:
    """The yardstick for `current_session()`: a function call around `ContextVar.get()`."""
    return _plain_var.get()


def enter_and_exit() -> None:
    with session(id=VALID_ID):
        pass


def samplers(calls: int) -> dict[str, Sampler]:
    """Name -> sampler. The first entry is the yardstick the others are compared with."""

    def timed(statement: Callable[[], object]) -> Sampler:
        timer = timeit.Timer(statement)

        # In an empty Context: reading a variable that is not set walks the Context's map of
        # the variables that are, whose shape (and so the cost of each variable's lookup)
        # depends on what the benchmarks before this one left set in the main thread.
        def in_an_empty_context(count: int) -> float:
            return Context().run(timer.timeit, count)

        return per_call_microseconds(in_an_empty_context, calls)

    return {
        "ContextVar.get() in a function": timed(contextvar_get_plus_a_call),
        "current_session()": timed(current_session),
        "session() enter and exit": timed(enter_and_exit),
        "extract_session_id(), 20 headers, exact name": timed(
            lambda: extract_session_id(TWENTY_HEADERS, header_name="mirascope-session-id")
        ),
        f"extract_session_id(), 20 headers, {SESSION_HEADER_NAME}": timed(
            lambda: extract_session_id(TWENTY_HEADERS)
        ),
        "generate_session_id()": timed(generate_session_id),
        "str(uuid.uuid4())": timed(lambda: str(uuid.uuid4())),
    }
