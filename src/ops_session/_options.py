"""The server options, defined once: each one's name, type, meaning, default and text form.

Every entry point takes the same options, with the same meaning: the ASGI and WSGI middlewares'
keywords, `install()`, Django's `OPS_SESSION` setting and the `OPS_SESSION_*` variables that
`opentelemetry-instrument` users set. All of them come from here, as Sentry's `consts.py`
(`ClientConstructor`) and OpenTelemetry's `environment_variables` name theirs in one place:
`SessionOptions` gives each option's name, type and meaning (type checkers read it for the
middlewares' keywords), `OPTIONS` its default and how its text form reads (a variable's value,
or a dotted path given for a callable), and `resolve_options` checks a set of options for every
entry point, with the same "did you mean" for a misspelt name.
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypedDict, TypeVar

from ._core import SESSION_HEADER_NAME, Jsonable, generate_session_id, is_valid_session_id
from ._header import check_header_name, session_header_name

__all__ = [
    "DEFAULT_COOKIE_MAX_AGE",
    "ENVIRONMENT_PREFIX",
    "OPTIONS",
    "OUTGOING_VARIABLES",
    "Attributes",
    "OnInvalid",
    "Option",
    "SessionOptions",
    "parse_environment",
    "resolve_options",
    "unknown_option",
]

RequestT = TypeVar("RequestT")
"""What the attributes callable receives: the ASGI scope, the WSGI environ, Django's request."""

OnInvalid: TypeAlias = Literal["generate", "reject"]
Attributes: TypeAlias = Mapping[str, Jsonable] | Callable[[RequestT], Mapping[str, Jsonable] | None]

DEFAULT_COOKIE_MAX_AGE = 86_400
"""Lifetime of the cookie `set_cookie` sends, in seconds: one day after the last response."""

ENVIRONMENT_PREFIX = "OPS_SESSION_"
"""Option `name` is read from the variable `OPS_SESSION_<NAME>` (upper case)."""


class SessionOptions(TypedDict, Generic[RequestT], total=False):
    """The options of `SessionMiddleware`, `WSGISessionMiddleware`, `install()` and Django.

    All are optional keywords. A callable option may also be given as the dotted path of one
    (`"myapp.ids.new_id"`), as Django settings and environment variables give it.
    """

    header_name: str
    """The request and response header that carries the session id."""
    generator: Callable[[], str] | str
    """Makes an id for a request without a valid one (default: a UUID4)."""
    validator: Callable[[str], bool] | str
    """Decides whether an incoming id is acceptable. A custom validator only sees values of 1 to
    1024 printable ASCII characters without spaces."""
    on_invalid: OnInvalid
    """`"generate"` replaces an invalid incoming id; `"reject"` answers 400 (websockets: close
    code 1008) without calling the app."""
    attributes: Attributes[RequestT] | str | None
    """Session attributes: a mapping, or a callable computing them from each request (the ASGI
    scope, the WSGI environ, Django's `HttpRequest`) as the session starts, before any layer
    inside the middleware runs. They reach traces: keep secrets out."""
    update_request_header: bool
    """When the id was generated (or read from another place), show the app the effective id in
    its request's `header_name` header, so that other middleware reads the same value."""
    also_accept: Sequence[str]
    """Other request header names to read the id from when `header_name` holds no valid one, in
    order; the first valid value wins. Responses only ever carry `header_name`."""
    query_param: str | None
    """The query parameter to read the id from when no session header is present and the cookie
    holds none, e.g. `"session_id"` for `new WebSocket("/ws?session_id=...")`. Such an id is never
    written into the cookie."""
    cookie: str | None
    """The cookie to read the id from when no session header is present."""
    set_cookie: bool
    """Also send the session as that cookie on each response (`HttpOnly`, `SameSite=Lax`,
    `Secure` over https, marked private for caches)."""
    cookie_max_age: int
    """The cookie's lifetime in seconds after the last response (one day)."""
    baggage: bool
    """Also read a valid `session.id` from W3C baggage when no session header is present, and
    put the request's id into OpenTelemetry's baggage while it runs, within the outgoing rule
    (`OPS_SESSION_OUTGOING_CARRIERS` must name `baggage`: baggage goes wherever trace context
    goes). Needs the `otel` extra."""


@dataclass(frozen=True, slots=True)
class Option:
    """One option: its default and how its text form reads."""

    name: str
    default: object
    parse: Callable[[str], object]
    """Reads the option from text: an `OPS_SESSION_*` variable's value."""
    text_in_code: bool = False
    """A `str` given in code or Django settings is the text form too (a dotted path)."""

    @property
    def variable(self) -> str:
        """The environment variable that sets this option."""
        return ENVIRONMENT_PREFIX + self.name.upper()


def _text(value: str) -> str:
    return value


def _header_name(value: str) -> str:
    # Read as `session_header_name()` reads it, so the middleware and the outgoing side agree.
    return check_header_name(value.strip())


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


def _imported(value: str) -> Any:
    module_name, _, attribute = value.strip().rpartition(".")
    if not module_name:
        raise ValueError(f"expected a dotted path such as 'package.module.function', got {value!r}")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import {value!r}: {error}") from None


def _callable(value: str) -> Callable[..., Any]:
    found = _imported(value)
    if not callable(found):
        raise ValueError(f"{value!r} is not callable")
    return found  # type: ignore[no-any-return]


def _attributes(value: str) -> object:
    """A JSON object, or the dotted path of a mapping or a callable that computes one."""
    if not value.lstrip().startswith("{"):
        return _imported(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"expected a JSON object, got {value!r} ({error})") from None
    return parsed  # text that starts with "{" and parses is an object


def _table(*options: Option) -> Mapping[str, Option]:
    return {option.name: option for option in options}


OPTIONS: Mapping[str, Option] = _table(
    Option("header_name", SESSION_HEADER_NAME, _header_name),
    Option("generator", generate_session_id, _callable, text_in_code=True),
    Option("validator", is_valid_session_id, _callable, text_in_code=True),
    Option("on_invalid", "generate", _text),
    Option("attributes", None, _attributes, text_in_code=True),
    Option("update_request_header", True, _boolean),
    Option("also_accept", (), _names),
    Option("query_param", None, _text),
    Option("cookie", None, _text),
    Option("set_cookie", False, _boolean),
    Option("cookie_max_age", DEFAULT_COOKIE_MAX_AGE, _integer),
    Option("baggage", False, _boolean),
)
"""Every server option, in the order of `SessionOptions`."""

# Process-wide outgoing settings are read where they are used (`_outgoing.py`), not by the
# middlewares; their variables are named here so that this module lists every OPS_SESSION_*
# variable the package reads. A new outgoing variable is one more entry.
OUTGOING_VARIABLES: Mapping[str, str] = {
    "OPS_SESSION_OUTGOING_HOSTS": "the hosts outgoing requests may send the session id to",
    "OPS_SESSION_OUTGOING_CARRIERS": "whether carriers that name no host get the session id",
}


def unknown_option(name: object, where: str) -> TypeError:
    """The error for an option `where` does not take, with the closest name when there is one."""
    close = difflib.get_close_matches(str(name), OPTIONS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return TypeError(f"{where} has no option {name!r}: {hint}The options are {', '.join(OPTIONS)}.")


def resolve_options(given: Mapping[str, object], where: str) -> dict[str, Any]:
    """Every option, from `given` or its default, with text forms read; checked by name only.

    Raises:
        TypeError: `given` names an option that does not exist (the message says which is meant).
        ValueError: A callable option given as a dotted path cannot be imported.
    """
    for name in given:
        if name not in OPTIONS:
            raise unknown_option(name, where)
    resolved: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        if name == "header_name" and name not in given:
            # The process-wide name (OPS_SESSION_HEADER_NAME, set_session_header_name), which
            # every outgoing carrier uses too: two services configured alike keep the session.
            resolved[name] = session_header_name()
            continue
        value = given.get(name, option.default)
        if option.text_in_code and isinstance(value, str):
            try:
                value = option.parse(value)
            except ValueError as error:
                raise ValueError(
                    f"{name} must be a callable or its dotted path: {error}."
                ) from None
        resolved[name] = value
    return resolved


def parse_environment(environ: Mapping[str, str]) -> Iterable[tuple[Option, str, object]]:
    """Each option an `OPS_SESSION_*` variable of `environ` sets: `(option, raw, parsed)`.

    Raises:
        ValueError: A variable's text cannot be read; the message names the variable.
    """
    for option in OPTIONS.values():
        raw = environ.get(option.variable)
        if raw is None or not raw.strip():
            continue
        try:
            parsed = option.parse(raw)
        except ValueError as error:
            raise ValueError(f"{option.variable} is invalid: {error}") from None
        yield option, raw, parsed
