"""The session itself: what it holds, how it becomes current, and how ids are read and checked.

Nothing here knows about ASGI or WSGI; both middlewares translate their native request and
response objects into these calls, so every rule about ids lives in this one module.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, TypeAlias, Union

SESSION_HEADER_NAME = "Mirascope-Session-Id"
"""The HTTP header that carries a session id between services."""

MAX_SESSION_ID_LENGTH = 128
"""The longest incoming session id the default validator accepts."""

Jsonable: TypeAlias = Union[  # noqa: UP007 (the string parts are forward references)
    None, str, int, float, bool, Sequence["Jsonable"], Mapping[str, "Jsonable"]
]
"""A value that `json.dumps` can write: what session attributes may hold."""

# Token characters that survive headers, URLs, log lines and span attributes unescaped. Checked by
# shape rather than as a UUID: nginx's $request_id and OpenTelemetry ids are not UUIDs.
_VALID_SESSION_ID = re.compile(rf"[A-Za-z0-9._:@+=/~-]{{1,{MAX_SESSION_ID_LENGTH}}}")
_JSON_SCALARS = (str, int, float, bool, type(None))

_current_session: ContextVar[SessionContext | None] = ContextVar(
    "ops_session.current_session", default=None
)


@dataclass(frozen=True, slots=True)
class SessionContext:
    """One session: an id shared by related traces, and attributes describing it.

    Instances are immutable: `attributes` holds a read-only copy of the mapping given, with nested
    lists turned into tuples and nested mappings made read-only, so code that receives the
    session later cannot change what others see.

    Example:
        >>> SessionContext(id="chat-42", attributes={"user": "ada"}).attributes["user"]
        'ada'
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
        if not self.id:
            raise ValueError("A session id must be a non-empty str; pass no id to generate one.")
        if self.attributes is not None:
            object.__setattr__(self, "attributes", _freeze_attributes(self.attributes))


_new_object = object.__new__
_set_id = SessionContext.__dict__["id"].__set__
_set_attributes = SessionContext.__dict__["attributes"].__set__


def _checked_session_context(
    id: str, frozen_attributes: Mapping[str, Jsonable] | None
) -> SessionContext:
    """A `SessionContext` from a checked id and frozen attributes, without checking them again.

    The middlewares make one per request, after validating the id and freezing the attributes
    themselves; this skips the dataclass's own checks and copy, which would repeat that work.
    """
    context: SessionContext = _new_object(SessionContext)
    _set_id(context, id)
    _set_attributes(context, frozen_attributes)
    return context


class _SessionScope:
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
        self._token = _current_session.set(self.context)
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
        _current_session.reset(token)

    def __call__(self, function: Any) -> Any:
        raise TypeError(
            "session() is a context manager, not a decorator: write `with session(...):` inside "
            f"{getattr(function, '__qualname__', function)!r} instead."
        )


def session(
    id: str | None = None,
    attributes: Mapping[str, Jsonable] | None = None,
) -> _SessionScope:
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
        TypeError: `id` is not a `str`, or `attributes` is not JSON-compatible (the message
            names the offending key).
        ValueError: `id` is empty.

    Example:
        >>> with session(id="chat-42") as current:
        ...     current_session() is current
        True
    """
    if id is None:
        return _SessionScope(SessionContext(attributes=attributes))
    return _SessionScope(SessionContext(id, attributes))


def current_session() -> SessionContext | None:
    """Return the session of the current `session()` block, or `None` outside of any."""
    return _current_session.get()


def extract_session_id(
    headers: Mapping[str, str | list[str]], *, header_name: str = SESSION_HEADER_NAME
) -> str | None:
    """Return the session id carried by a mapping of HTTP headers, if any.

    The header name matches in any case. A list value (one entry per repeated header) gives its
    first element. An empty value or list counts as absent. The value is returned as sent: use
    `is_valid_session_id` before trusting it.

    Args:
        headers: Header names to values, such as `dict(request.headers)`.
        header_name: The header to read.

    Returns:
        The session id, or `None` when the header is absent or empty.
    """
    value = headers.get(header_name)
    if value is None:
        wanted = header_name.lower()
        # Most mappings are case-insensitive or keyed in lower case: try that before a scan.
        value = headers.get(wanted)
        if value is None:
            for name, candidate in headers.items():
                if name.lower() == wanted:
                    value = candidate
                    break
            else:
                return None
    if not isinstance(value, str):
        value = value[0] if value else ""
    return value or None


def generate_session_id() -> str:
    """Return a new random session id: a UUID4 string such as `'9b2f4c1e-...'`."""
    # The string str(uuid.uuid4()) gives, from the same 16 random bytes, at a third of its cost:
    # the version digit is 4 and the variant digit one of 8, 9, a, b (RFC 9562).
    digits = os.urandom(16).hex()
    return (
        f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-"
        f"{_UUID_VARIANT_DIGIT[digits[16]]}{digits[17:20]}-{digits[20:]}"
    )


_UUID_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def is_valid_session_id(value: str) -> bool:
    """Whether `value` is safe to accept as an incoming session id.

    Valid ids have 1 to 128 characters from `A-Z a-z 0-9 . _ : @ + = / ~ -`: UUIDs, ULIDs,
    nginx `$request_id` values and OpenTelemetry ids all pass, while anything that could break a
    header, a log line or a URL does not.
    """
    return _VALID_SESSION_ID.fullmatch(value) is not None


def inject_session(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current session's id into outgoing request headers.

    Outside a session the headers are left as they are. A session header already present is
    kept, so a caller can still forward a different id on purpose.

    Args:
        headers: The outgoing headers, changed in place.

    Returns:
        The same `headers`, for chaining.

    Example:
        >>> with session(id="chat-42"):
        ...     inject_session({})
        {'Mirascope-Session-Id': 'chat-42'}
    """
    current = _current_session.get()
    if current is not None and extract_session_id(headers) is None:
        headers[SESSION_HEADER_NAME] = current.id
    return headers


def _freeze_attributes(attributes: Mapping[str, Jsonable]) -> Mapping[str, Jsonable]:
    if not isinstance(attributes, Mapping):
        raise TypeError(
            f"Session attributes must be a mapping of str to JSON values, got {attributes!r}."
        )
    return _freeze_mapping(attributes, "attributes")


def _freeze_mapping(mapping: Mapping[Any, object], path: str) -> Mapping[str, Jsonable]:
    frozen: dict[str, Jsonable] = {}
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"Session {path} keys must be str, got {key!r}.")
        frozen[key] = _freeze(item, f"{path}[{key!r}]")
    return MappingProxyType(frozen)


def _freeze(value: object, path: str) -> Jsonable:
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, Mapping):
        return _freeze_mapping(value, path)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return tuple(_freeze(item, f"{path}[{index}]") for index, item in enumerate(value))
    raise TypeError(
        f"Session {path} must be JSON-compatible (str, int, float, bool, None, lists and "
        f"mappings of those), got {type(value).__name__} {value!r}; convert it first."
    )


def _attributes_json(attributes: Mapping[str, Jsonable] | None) -> str | None:
    """Frozen attributes as compact JSON, or `None` when there are none."""
    if not attributes:
        return None
    # Frozen mappings are read-only proxies, which json writes through dict().
    return json.dumps(attributes, default=dict, separators=(",", ":"), ensure_ascii=False)


def _thaw(value: Jsonable) -> Any:
    """A plain, mutable copy of frozen attributes: dicts and lists, as JSON tools expect."""
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value
