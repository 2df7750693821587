"""Environment variables of the outgoing side, each read once, when first needed. Stdlib only.

Carriers ask for the header name and the outgoing rules on every request and every job, and a
lookup in `os.environ` (a `KeyError` raised and caught when the variable is unset) would cost a
Celery task more than all of ops-session's own work on it. So a variable is read and checked
once; code changes the rules while the process runs with the `set_*` functions instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Variable", "forget_variables"]

T = TypeVar("T")

_variables: list[Variable[Any]] = []


class Variable(Generic[T]):
    """The value `parse` makes of variable `name` (blank: `default`), or the `ValueError` it raised.

    The error is raised again, as a new `ValueError` naming the variable, on every `get()`.
    """

    __slots__ = ("name", "_default", "_parse", "_read", "_value", "_error")

    def __init__(self, name: str, default: T, parse: Callable[[str], T]) -> None:
        self.name = name
        self._default = default
        self._parse = parse
        self._read = False
        self._value = default
        self._error: str | None = None
        _variables.append(self)

    def get(self) -> T:
        if not self._read:
            raw = os.environ.get(self.name, "")
            try:
                self._value = self._parse(raw) if raw.strip() else self._default
                self._error = None
            except ValueError as error:
                self._error = f"{self.name}={raw!r} is invalid: {error}"
            self._read = True
        if self._error is not None:
            raise ValueError(self._error)
        return self._value

    def forget(self) -> None:
        """Read the variable again at the next `get()`."""
        self._read = False


def forget_variables() -> None:
    """Read every variable again when next needed (tests that change the environment)."""
    for variable in _variables:
        variable.forget()
