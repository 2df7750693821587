"""Where else a request may carry its session id: other header names, a query parameter, a cookie.

Browsers cannot set headers on a `WebSocket` handshake, and a page may prefer a cookie. These
readers run only when a middleware option asks for them and the session header is absent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, TypeVar
from urllib.parse import parse_qsl

RequestT_contra = TypeVar("RequestT_contra", contravariant=True)

# An RFC 9110 token: what a header name may be made of.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 3986 unreserved characters: a parameter name that no client percent-encodes.
QUERY_PARAM_NAME = re.compile(r"[A-Za-z0-9._~-]{1,128}")
# RFC 6265 cookie-octets: a value that can be written into Set-Cookie without quoting, and that
# cannot end the pair or add an attribute (no space, DQUOTE, comma, semicolon or backslash).
COOKIE_VALUE = re.compile(r"[!#-+\--:<-\[\]-~]+")


class RequestReader(Protocol[RequestT_contra]):
    """How an adapter reads the other places of its protocol's request."""

    def header(self, request: RequestT_contra, name: str) -> str | None:
        """The first value of header `name` (any case), or `None`."""

    def query_string(self, request: RequestT_contra) -> str:
        """The raw query string, without `?`, decoded as latin-1."""

    def cookie_header(self, request: RequestT_contra) -> str | None:
        """The `Cookie` header (several joined with `; `, as RFC 9113 allows), or `None`."""


def check_source_options(
    header_name: str,
    also_accept: Iterable[str],
    query_param: str | None,
    cookie: str | None,
    set_cookie: bool,
    cookie_max_age: int,
) -> tuple[str, ...]:
    """Check the options that name other places; return `also_accept` as a tuple."""
    if isinstance(also_accept, str) or not isinstance(also_accept, Iterable):
        raise TypeError(
            "also_accept must be a list or tuple of header names such as "
            f"('X-Mirascope-Session-Id',), got {also_accept!r}."
        )
    names = tuple(also_accept)
    seen = {header_name.lower()}
    for name in names:
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise ValueError(
                f"also_accept must hold HTTP header names such as 'X-Mirascope-Session-Id', "
                f"got {name!r}."
            )
        if name.lower() in seen:
            raise ValueError(
                f"also_accept names {name!r} twice, or with header_name; name each once."
            )
        seen.add(name.lower())
    if query_param is not None and not (
        isinstance(query_param, str) and QUERY_PARAM_NAME.fullmatch(query_param)
    ):
        raise ValueError(
            "query_param must be None or a parameter name of letters, digits, '-', '_', "
            f"'.' or '~' such as 'session_id', got {query_param!r}."
        )
    if cookie is not None and not (isinstance(cookie, str) and HEADER_NAME.fullmatch(cookie)):
        raise ValueError(
            f"cookie must be None or a cookie name such as 'session_id', got {cookie!r}."
        )
    if not isinstance(set_cookie, bool):
        raise TypeError(f"set_cookie must be a bool, got {set_cookie!r}.")
    if set_cookie and cookie is None:
        raise ValueError("set_cookie=True needs cookie set to the cookie's name.")
    if not isinstance(cookie_max_age, int) or isinstance(cookie_max_age, bool):
        raise TypeError(f"cookie_max_age must be an int of seconds, got {cookie_max_age!r}.")
    if cookie_max_age <= 0:
        raise ValueError(
            f"cookie_max_age must be a positive number of seconds, got {cookie_max_age!r}."
        )
    return names


def query_value(query_string: str, name: str) -> str | None:
    """The first value of parameter `name`, percent-decoded as HTML forms encode it, or `None`."""
    if name not in query_string and "%" not in query_string:
        return None  # a parameter whose name was not percent-encoded would show as is
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key == name:
            return value
    return None


def cookie_value(cookie_header: str, name: str) -> str | None:
    """The value of the first cookie named `name` (case-sensitive), or `None`.

    A strict reading of RFC 6265's `name=value; name=value`: pairs without `=` are skipped, one
    pair of surrounding double quotes is removed, and nothing is unescaped or percent-decoded
    (`http.cookies` would unescape octal escapes, stop at the first malformed pair and treat names
    such as `path` as attributes).
    """
    for pair in cookie_header.split(";"):
        key, equals, value = pair.partition("=")
        if equals and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None
