"""The session itself: what it holds, how it becomes current, and how ids are read and checked.

Nothing here knows about ASGI or WSGI. Both middlewares and every integration translate their
native objects into these calls, so every rule about ids, and the one way of making a session
current (`activate` and `deactivate`), live in this one module.
"""

from __future__ import annotations

import binascii
import os
import re
import struct
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import MethodType, TracebackType
from typing import Never, NoReturn, TypeAlias

from ._attributes import Jsonable, attributes_json, freeze_attributes
from ._header import SESSION_HEADER_NAME, session_header_name

__all__ = [
    "CARRIABLE_SESSION_ID",
    "MAX_SESSION_ID_LENGTH",
    "SESSION_HEADER_NAME",
    "SHARED_EXCEPTION_NOTE",
    "VALID_SESSION_ID",
    "Jsonable",
    "RequestListener",
    "SessionContext",
    "activate",
    "add_request_listener",
    "attributes_json",
    "continue_session",
    "current_session",
    "deactivate",
    "extract_session_id",
    "freeze_attributes",
    "generate_session_id",
    "is_valid_session_id",
    "notify_request_started",
    "remove_request_listener",
    "request_listeners",
    "note_session",
    "require_session",
    "session",
]

MAX_SESSION_ID_LENGTH = 128
"""The longest incoming session id the default validator accepts."""

CARRIABLE_SESSION_ID = re.compile(r"[!-~]{1,1024}")
"""What any session id must be, whoever makes it: 1 to 1024 printable ASCII characters without
spaces, so that every id a session can have fits unescaped in a header and a log line."""

VALID_SESSION_ID = re.compile(
    # Not only dots (`.` and `..` are path segments, and ids end up in paths whatever one says),
    # nor a placeholder that a client with nothing stored sends (`${null}` in JavaScript: every
    # such client would share one session). An id whose first character starts neither passes
    # the look-ahead on that one character: most ids, at almost no cost.
    r"(?=[^.nNuUtTfF]|(?!(?:\.+|(?i:null|none|nil|nan|undefined|true|false))\Z))"
    rf"[A-Za-z0-9._:@+=~-]{{1,{MAX_SESSION_ID_LENGTH}}}"
)
"""The default rule for incoming ids, by shape rather than as a UUID: nginx's `$request_id` and
OpenTelemetry ids are not UUIDs. These token characters survive headers, URLs, log lines and
span attributes unescaped; `/` is not among them, so that no id is a path (`../../x`,
`/etc/passwd`). Ids of dots only and placeholders (`null`, `undefined`, `None`, ...) are refused."""

_current_session: ContextVar[SessionContext | None] = ContextVar(
    "ops_session.current_session", default=None
)

activate: Callable[[SessionContext | None], Token[SessionContext | None]] = _current_session.set
"""Make a session current; keep the token and pass it to `deactivate` in the same Context."""

deactivate: Callable[[Token[SessionContext | None]], None] = _current_session.reset
"""Restore the session that was current before the `activate` call that gave `token`."""


class _SessionViews:
    """A slot for the view of a session that Mirascope's code reads (see `_mirascope.py`).

    Kept out of the dataclass fields, so it takes no part in equality, `repr`, pickling or
    copying, and a session that Mirascope never reads never fills it.
    """

    __slots__ = ("_mirascope_view",)


@dataclass(frozen=True, slots=True)
class SessionContext(_SessionViews):
    """One session: an id shared by related traces, and attributes describing it.

    Instances are immutable, and `attributes` holds a read-only copy of the mapping given: it
    equals the input, `json.dumps` writes it, and it pickles and deep-copies, but no code that
    receives the session later can change what others see.

    Example:
        >>> SessionContext(id="chat-42", attributes={"user": "ada"}).attributes
        {'user': 'ada'}
    """

    id: str = field(default_factory=lambda: generate_session_id())
    """The session id; a fresh UUID4 string when not given."""

    attributes: Mapping[str, Jsonable] | None = field(default=None, hash=False)
    """JSON-compatible data about the session, read-only. Keep secrets out: it reaches traces."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise TypeError(
                f"A session id must be a str, got {type(self.id).__name__} {self.id!r}; "
                "convert it with str(), or pass no id to generate one."
            )
        if CARRIABLE_SESSION_ID.fullmatch(self.id) is None:
            raise ValueError(
                "A session id must be a str of 1 to 1024 printable ASCII characters without "
                f"spaces, since it travels in HTTP headers and log lines; got {len(self.id)} "
                "characters that are not. Pass no id to generate one."
            )
        if self.attributes is not None:
            object.__setattr__(self, "attributes", freeze_attributes(self.attributes))


class _SessionScope(AbstractContextManager[SessionContext]):
    """Makes a `SessionContext` current on enter and restores the previous one on exit."""

    __slots__ = ("context", "_token")

    def __init__(self, context: SessionContext) -> None:
        self.context = context
        self._token: Token[SessionContext | None] | None = None

    def __enter__(self) -> SessionContext:
        if self._token is not None:
            raise RuntimeError(
                "This session() block is already active; call session() again for a new block."
            )
        self._token = activate(self.context)
        return self.context

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is None:
            raise RuntimeError("This session() block was exited without being entered.")
        deactivate(token)

    def __call__(self, function: object) -> NoReturn:
        _refuse_decorator(function)


def _refuse_decorator(function: object) -> NoReturn:
    raise TypeError(
        "session() is a context manager, not a decorator: write `with session(...):` inside "
        f"{getattr(function, '__qualname__', function)!r} instead."
    )


def session(
    *decorated: Never,
    id: str | None = None,
    attributes: Mapping[str, Jsonable] | None = None,
) -> AbstractContextManager[SessionContext]:
    """Make a session current for the duration of a `with` block.

    The previous session (or none) is restored when the block exits, also when an exception
    passes through it. Each thread and each asyncio task has its own current session: a task
    started inside the block sees it, code running elsewhere does not.

    Args:
        id: The session id. When `None`, a UUID4 string is generated.
        attributes: JSON-compatible data about the session. It is copied and frozen, and reaches
            traces, so keep secrets out of it.

    Returns:
        A context manager whose `__enter__` returns the new `SessionContext`.

    Raises:
        TypeError: `id` is not a `str`, `attributes` is not JSON-compatible (the message names
            the offending key), or `session` is used as a decorator or given positional
            arguments.
        ValueError: `id` is empty.

    Example:
        >>> with session(id="chat-42") as current:
        ...     current_session() is current
        True
    """
    if decorated:
        if len(decorated) == 1 and callable(decorated[0]):
            _refuse_decorator(decorated[0])
        raise TypeError(
            f"session() takes keyword arguments only, got {decorated!r}: "
            "write session(id=...) or session(attributes=...)."
        )
    if id is None:
        return _SessionScope(SessionContext(attributes=attributes))
    return _SessionScope(SessionContext(id, attributes))


def current_session() -> SessionContext | None:
    """Return the session of the current `session()` block, or `None` outside of any."""
    return _current_session.get()


def require_session() -> SessionContext:
    """Return the current session; raise `LookupError` outside of any.

    Use it where a session is always expected (a handler behind the middleware), so that the
    type is `SessionContext` rather than an Optional.

    Raises:
        LookupError: No session is current; the message says how to open one.
    """
    current = _current_session.get()
    if current is None:
        raise LookupError(
            "No session is current: add ops_session's middleware to the app (or call "
            "ops_session.install(app)), or open one with `with session():`."
        )
    return current


RequestListener: TypeAlias = Callable[[SessionContext], object]
"""Called with a request's session as soon as a middleware has made it current."""

request_listeners: list[Callable[[], RequestListener | None]] = []
"""Weak references to the registered `RequestListener`s. Middlewares test this list before
calling `notify_request_started`, so with none registered a request pays one truth test."""


def _reference(listener: RequestListener) -> Callable[[], RequestListener | None]:
    # A bound method is held weakly, so that its object (a span processor dropped with its
    # provider) is not kept alive, nor called on every request, by this module.
    if isinstance(listener, MethodType):
        return weakref.WeakMethod(listener, _forget)
    return lambda: listener


def _forget(reference: object) -> None:
    with suppress(ValueError):
        request_listeners.remove(reference)  # type: ignore[arg-type]


def add_request_listener(listener: RequestListener) -> None:
    """Call `listener` for each request session a middleware starts (once, however often added).

    This is how an integration reacts to a request's session, for example to stamp a server span
    that was opened before the session. It runs inside the request's context, before the app.
    A bound method is held by weak reference: it stops being called when its object is dropped.
    """
    if all(reference() != listener for reference in request_listeners):
        request_listeners.append(_reference(listener))


def remove_request_listener(listener: RequestListener) -> None:
    """Stop calling a listener added with `add_request_listener`; unknown listeners are ignored."""
    for reference in list(request_listeners):
        if reference() == listener:
            _forget(reference)


def notify_request_started(context: SessionContext) -> None:
    """Tell every registered listener that a request's session has started."""
    for reference in tuple(request_listeners):
        listener = reference()
        if listener is not None:
            listener(context)


_NOTE_PREFIX = "ops-session: "
SHARED_EXCEPTION_NOTE = (
    "ops-session: raised in more than one session (one exception object shared by several "
    "requests); each request's log lines name its own session"
)
"""The note of an exception object that left several sessions (a failed shared task)."""


def note_session(error: BaseException, context: SessionContext) -> None:
    """Add the note that names the session an exception left, which the server's traceback prints.

    Servers log an unhandled exception's traceback after the session closed, so log fields
    cannot name it there; the traceback prints its notes (PEP 678). An exception object can be
    raised by many requests (a failed task that several requests await, a module-level error
    raised again): it keeps one note of ours whatever happens, and once a second session sees it
    that note names no session, so that no request's traceback names another user's session.
    """
    note = f"{_NOTE_PREFIX}raised in session {context.id}"
    notes = getattr(error, "__notes__", None)
    if notes is not None:
        if not isinstance(notes, list):
            return  # add_note would raise: leave the error as it is
        for index, existing in enumerate(notes):
            if isinstance(existing, str) and existing.startswith(_NOTE_PREFIX):
                if existing != note:
                    notes[index] = SHARED_EXCEPTION_NOTE
                return
    error.add_note(note)


def extract_session_id(
    headers: Mapping[str, str | list[str]], *, header_name: str | None = None
) -> str | None:
    """Return the session id carried by a mapping of HTTP headers, if any.

    The header name matches in any case. A list value (one entry per repeated header) gives its
    first element. An empty value or list counts as absent. The value is returned as sent: use
    `is_valid_session_id` before trusting it.

    Args:
        headers: Header names to values, such as `dict(request.headers)`.
        header_name: The header to read; by default the process-wide session header
            (`set_session_header_name`, `OPS_SESSION_HEADER_NAME`, `Mirascope-Session-Id`).

    Returns:
        The session id, or `None` when the header is absent or empty.

    Raises:
        TypeError: A name or the value is not a `str` (or a list of `str`), such as `bytes`.
        ValueError: `header_name` is not given and `OPS_SESSION_HEADER_NAME` is invalid.
    """
    if header_name is None:
        header_name = session_header_name()
    value = headers.get(header_name)
    if value is None:
        wanted = header_name.lower()
        # Most mappings are case-insensitive or keyed in lower case: try that before a scan.
        value = headers.get(wanted)
        if value is None:
            for name, candidate in headers.items():
                if not isinstance(name, str):
                    raise TypeError(
                        f"Header names must be str, got {type(name).__name__} {name!r}; "
                        "decode bytes headers (latin-1) first."
                    )
                if name.lower() == wanted:
                    value = candidate
                    break
            else:
                return None
    if not isinstance(value, str):
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        if not isinstance(value, str):
            raise TypeError(
                f"The {header_name} header value must be a str or a list of str, got "
                f"{type(value).__name__}; decode bytes headers (latin-1) first."
            )
    return value or None


_IDS_PER_BATCH = 64
# Each id's 16 random bytes get the UUID version (4) in byte 6 and the RFC 9562 variant (binary
# 10) in byte 8, through a table from any byte to the byte it becomes.
_VERSION_4 = bytes((byte & 0x0F) | 0x40 for byte in range(256))
_VARIANT = bytes((byte & 0x3F) | 0x80 for byte in range(256))
# The batch in hex, a dash after every fourth digit, is "aaaa-bbbb-cccc-dddd-eeee-ffff-gggg-hhhh-"
# for each id; an id is "aaaabbbb-cccc-dddd-eeee-ffffgggghhhh". One struct reads the four runs
# between the three dashes an id drops, and another writes them back with a NUL after each id.
_HEX_RUNS = struct.Struct("4sx24sx4sx4sx" * _IDS_PER_BATCH)
_IDS = struct.Struct("4s24s4s4sx" * _IDS_PER_BATCH)
_ready_ids: Iterator[str] = iter(())


def generate_session_id() -> str:
    """Return a new random session id: a UUID4 string such as `'9b2f4c1e-...'`."""
    # The string str(uuid.uuid4()) gives, from 16 random bytes, at a fraction of its cost:
    # `make bench`, "The core alone", rows "generate_session_id()" and "str(uuid.uuid4())".
    return next(_ready_ids, None) or _new_batch()


def _new_batch() -> str:
    """Draw and format the next 64 ids at once, and return the first.

    One `os.urandom` call and a few calls in C for 64 ids, rather than a call and a formatted
    string each: a request without an id then pays one step of a C iterator, while the batch
    holds about 5 KB. Taking the next item is one step of that iterator, so two threads never
    get the same id.
    """
    global _ready_ids
    random = bytearray(os.urandom(16 * _IDS_PER_BATCH))
    random[6::16] = random[6::16].translate(_VERSION_4)
    random[8::16] = random[8::16].translate(_VARIANT)
    runs = _HEX_RUNS.unpack(binascii.hexlify(random, "-", 2) + b"-")
    ids = _IDS.pack(*runs).decode("ascii").split("\0")
    ids.pop()  # the empty string after the last id's NUL
    _ready_ids = iter(ids)
    return next(_ready_ids)


def _forget_batch() -> None:  # pragma: no cover - runs in forked children, out of coverage's sight
    """A forked child must not hand out the ids its parent will: it draws its own.

    `tests/test_core.py::test_a_forked_child_makes_ids_of_its_own` shows that it runs.
    """
    global _ready_ids
    _ready_ids = iter(())


os.register_at_fork(after_in_child=_forget_batch)


def is_valid_session_id(value: str) -> bool:
    """Whether `value` is safe to accept as an incoming session id.

    Valid ids have 1 to 128 characters from `A-Z a-z 0-9 . _ : @ + = ~ -`: UUIDs, ULIDs,
    nginx `$request_id` values, OpenTelemetry ids and base64url ids all pass, while anything that
    could break a header, a log line or a URL does not. `/` is refused, so that no id is a path
    (`../../x`, `/etc/passwd`), and so are ids of dots only (`.`, `..`) and the placeholders a
    client with no id stored sends (`null`, `undefined`, `None`, `nil`, `NaN`, `true`, `false`,
    in any case), which would put every such client in one session.

    Raises:
        TypeError: `value` is not a `str`.
    """
    if not isinstance(value, str):
        raise TypeError(
            f"A session id to check must be a str, got {type(value).__name__} {value!r}; "
            "decode bytes (latin-1) first."
        )
    return VALID_SESSION_ID.fullmatch(value) is not None


@contextmanager
def continue_session(
    headers: Mapping[str, str | list[str]],
    *,
    generate: bool = False,
    header_name: str | None = None,
) -> Iterator[SessionContext | None]:
    """Continue the session a carrier of headers brings: the receiving half of `inject_session`.

    A valid id (read as `extract_session_id` reads it) opens `session(id=...)` for the block and
    yields its `SessionContext`. A missing or invalid id yields `None` and changes nothing,
    unless `generate=True`, which opens a session with a new id instead. Use it wherever work
    arrives with headers: queue messages, job payloads, gRPC metadata.

    Example:
        >>> with continue_session({"mirascope-session-id": "chat-42"}) as current:
        ...     current.id if current else None
        'chat-42'
    """
    incoming = extract_session_id(headers, header_name=header_name)
    if incoming is not None and is_valid_session_id(incoming):
        with session(id=incoming) as current:
            yield current
    elif generate:
        with session() as current:
            yield current
    else:
        yield None
