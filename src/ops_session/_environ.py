"""The middleware options a process sets without code: `OPS_SESSION_*` environment variables.

`opentelemetry-instrument` users configure everything by environment, so every server option
has a variable, `OPS_SESSION_<OPTION>` (see `_options.py`, which defines them all). Each value is
checked here, by building a middleware with it, and a bad one raises a `ValueError` that names
the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._options import OPTIONS, parse_environment
from .asgi import SessionMiddleware

__all__ = ["ENVIRONMENT_OPTIONS", "middleware_options"]

ENVIRONMENT_OPTIONS: Mapping[str, tuple[str, Callable[[str], Any]]] = {
    option.variable: (option.name, option.parse) for option in OPTIONS.values()
}
"""Variable name to (middleware option, parser). `OPS_SESSION_OUTGOING_HOSTS` is the outgoing
allow-list, read by the client hooks (`_options.OUTGOING_VARIABLES`)."""


async def _no_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    pass  # never called: the middleware is built only to check its options


def middleware_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The middleware options the `OPS_SESSION_*` variables of `environ` set, checked.

    Raises:
        ValueError: A variable holds a value the middlewares refuse; the message names it.
    """
    options: dict[str, Any] = {}
    for option, _, parsed in parse_environment(environ):
        options[option.name] = parsed
        try:
            SessionMiddleware(_no_app, **options)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{option.variable} is invalid: {error}") from None
    return options
