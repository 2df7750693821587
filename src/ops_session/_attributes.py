"""Session attributes: read-only JSON values that still behave as the dicts and lists they are.

A session's attributes are shared by every piece of code that reads the session, so none may
change what the others see. They must also stay what users gave: equal to the input, written by
`json.dumps`, picklable (job queues and process pools pickle them) and deep-copyable. Read-only
subclasses of `dict` and `list` give both; their JSON is computed once, since the same
attributes are written on every span and log line of a session.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, Union

__all__ = ["Jsonable", "attributes_json", "freeze_attributes"]

if TYPE_CHECKING:
    Jsonable: TypeAlias = Union[  # noqa: UP007 (the string parts are forward references)
        None, str, int, float, bool, Sequence["Jsonable"], Mapping[str, "Jsonable"]
    ]
    """A value that `json.dumps` can write: what session attributes may hold."""
else:
    # At run time one level only: pydantic and FastAPI expand a self-referencing alias until
    # they hit the recursion limit. `freeze_attributes` checks the depth that this leaves out.
    Jsonable = None | str | int | float | bool | Sequence[Any] | Mapping[str, Any]

_JSON_SCALARS = (str, int, float, bool, type(None))
_MAX_DEPTH = 64


def _read_only(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        "Session attributes are read-only; open a new session(attributes=...) to change them."
    )


class _FrozenDict(dict[str, Any]):
    __slots__ = ("_json",)
    _json: str  # set by attributes_json() on first use

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[type[_FrozenDict], tuple[dict[str, Any]]]:
        return (_FrozenDict, (dict(self),))

    def __copy__(self) -> _FrozenDict:
        return self


class _FrozenList(list[Any]):
    __slots__ = ()

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __reduce__(self) -> tuple[type[_FrozenList], tuple[list[Any]]]:
        return (_FrozenList, (list(self),))

    def __copy__(self) -> _FrozenList:
        return self


def freeze_attributes(attributes: Mapping[str, Jsonable]) -> Mapping[str, Jsonable]:
    """A read-only copy of session attributes, checked to hold only JSON values.

    Already-frozen attributes are returned as they are.

    Raises:
        TypeError: A key is not a `str` or a value is not JSON-compatible; the message names it.
        ValueError: The attributes nest deeper than 64 levels.
    """
    return _frozen(attributes)


def _frozen(attributes: Mapping[str, Jsonable]) -> _FrozenDict:
    if type(attributes) is _FrozenDict:
        return attributes
    if not isinstance(attributes, Mapping):
        raise TypeError(
            f"Session attributes must be a mapping of str to JSON values, got {attributes!r}."
        )
    return _freeze_mapping(attributes, "attributes", 0)


def _freeze_mapping(mapping: Mapping[Any, object], path: str, depth: int) -> _FrozenDict:
    if depth > _MAX_DEPTH:
        raise _too_deep()
    frozen = _FrozenDict()
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"Session {path} keys must be str, got {key!r}.")
        dict.__setitem__(frozen, key, _freeze(item, f"{path}[{key!r}]", depth + 1))
    return frozen


def _too_deep() -> ValueError:
    return ValueError(
        f"Session attributes nest deeper than {_MAX_DEPTH} levels; flatten them, or look for "
        "a value that contains itself."
    )


def _freeze(value: object, path: str, depth: int) -> Any:
    if isinstance(value, _JSON_SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"Session {path} is {value!r}, which JSON cannot carry; use None or a string."
            )
        return value
    if isinstance(value, Mapping):
        return _freeze_mapping(value, path, depth)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        if depth > _MAX_DEPTH:
            raise _too_deep()
        return _FrozenList(
            _freeze(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)
        )
    raise TypeError(
        f"Session {path} must be JSON-compatible (str, int, float, bool, None, lists and "
        f"mappings of those), got {type(value).__name__} {value!r}; convert it first."
    )


def attributes_json(attributes: Mapping[str, Jsonable] | None) -> str | None:
    """Frozen attributes as compact JSON, computed once per mapping; `None` when there are none."""
    if not attributes:
        return None
    frozen = _frozen(attributes)
    try:
        return frozen._json
    except AttributeError:
        frozen._json = json.dumps(frozen, separators=(",", ":"), ensure_ascii=False)
        return frozen._json
