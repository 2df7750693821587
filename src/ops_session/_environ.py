"""The middleware options a process sets without code: `OPS_SESSION_*` environment variables.

`opentelemetry-instrument` users configure everything by environment, so every option that makes
sense without code has a variable. Each value is checked here, by building a middleware with it,
and a bad one raises a `ValueError` that names the variable.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from .asgi import SessionMiddleware

__all__ = ["ENVIRONMENT_OPTIONS", "middleware_options"]


def _text(value: str) -> str:
    return value


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"expected a JSON object, got {value!r} ({error})") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"expected a JSON object, got {value!r}")
    return parsed


def _callable(value: str) -> Callable[..., Any]:
    module_name, _, attribute = value.strip().rpartition(".")
    if not module_name:
        raise ValueError(f"expected a dotted path such as 'package.module.function', got {value!r}")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import {value!r}: {error}") from None
    if not callable(found):
        raise ValueError(f"{value!r} is not callable")
    return found  # type: ignore[no-any-return]


ENVIRONMENT_OPTIONS: Mapping[str, tuple[str, Callable[[str], Any]]] = {
    "OPS_SESSION_HEADER_NAME": ("header_name", _text),
    "OPS_SESSION_GENERATOR": ("generator", _callable),
    "OPS_SESSION_VALIDATOR": ("validator", _callable),
    "OPS_SESSION_ON_INVALID": ("on_invalid", _text),
    "OPS_SESSION_ATTRIBUTES": ("attributes", _json_object),
    "OPS_SESSION_UPDATE_REQUEST_HEADER": ("update_request_header", _boolean),
    "OPS_SESSION_ALSO_ACCEPT": ("also_accept", _names),
    "OPS_SESSION_QUERY_PARAM": ("query_param", _text),
    "OPS_SESSION_COOKIE": ("cookie", _text),
    "OPS_SESSION_SET_COOKIE": ("set_cookie", _boolean),
    "OPS_SESSION_COOKIE_MAX_AGE": ("cookie_max_age", _integer),
    "OPS_SESSION_BAGGAGE": ("baggage", _boolean),
}
"""Variable name to (middleware option, parser). `OPS_SESSION_OUTGOING_HOSTS` is the outgoing
allow-list, read by the client hooks."""


async def _no_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    pass  # never called: the middleware is built only to check its options


def middleware_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The middleware options the `OPS_SESSION_*` variables of `environ` set, checked.

    Raises:
        ValueError: A variable holds a value the middlewares refuse; the message names it.
    """
    options: dict[str, Any] = {}
    for variable, (option, parse) in ENVIRONMENT_OPTIONS.items():
        raw = environ.get(variable)
        if raw is None or not raw.strip():
            continue
        try:
            options[option] = parse(raw)
            SessionMiddleware(_no_app, **options)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{variable} is invalid: {error}") from None
    return options
