"""The session cookie on a response: its `Set-Cookie`, its removal, and what caches must know.

Only `set_cookie=True` writes a cookie. Three rules keep it from doing harm:

- The app's own cookie of the same name wins: a response that sets (deletes, rotates) it gets
  no second one from us.
- A response that carries a per-user `Set-Cookie` must not be stored by a shared cache and
  handed to someone else, who would then join that session. A response without `Cache-Control`
  is marked `private`; one whose own `Cache-Control` lets shared caches store it (`public`,
  `max-age` and the like, without `private`, `no-store` or `no-cache`) gets no cookie from us, so
  the app's caching stands. `Vary: Cookie` is added unless the app's `Vary` covers it already.
- `Secure` follows the request's scheme as it is when the response starts, after any layer
  inside ours (uvicorn's `ProxyHeadersMiddleware`, werkzeug's `ProxyFix`) corrected it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ._sources import COOKIE_VALUE

__all__ = ["SessionCookie"]

logger = logging.getLogger("ops_session")

# Cache-Control directives that keep a shared cache from serving a stored response as it is.
_NOT_SHARED = frozenset({"private", "no-store", "no-cache"})


class SessionCookie:
    """The `set_cookie` option of one middleware: how its cookie is written and removed."""

    __slots__ = ("name", "_attributes", "_safe_ids")

    def __init__(self, name: str, max_age: int, *, safe_ids: bool) -> None:
        self.name = name
        self._attributes = f"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        # Every id the default validator accepts is a valid cookie value; a custom one may not be.
        self._safe_ids = safe_ids

    def value(self, session_id: str, secure: bool) -> str | None:
        """The `Set-Cookie` value that keeps `session_id` in the browser; `None` if it cannot."""
        if not self._safe_ids and COOKIE_VALUE.fullmatch(session_id) is None:
            logger.debug("Session id not sent as a cookie: a cookie value cannot hold it.")
            return None
        return f"{self.name}={session_id}{self._attributes}{'; Secure' if secure else ''}"

    def clearing(self, secure: bool) -> str:
        """The `Set-Cookie` value that removes the cookie from the browser."""
        return (
            f"{self.name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{'; Secure' if secure else ''}"
        )

    def names_it(self, set_cookie: str) -> bool:
        """Whether a `Set-Cookie` value is about this cookie."""
        return set_cookie.partition("=")[0].strip() == self.name

    def headers_for(
        self, session_id: str, secure: bool, app_headers: Iterable[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The headers to add to a response whose own `Set-Cookie`, `Cache-Control` and `Vary`
        headers (names in lower case) are `app_headers`; none when the cookie must not be sent."""
        cache_control: list[str] | None = None
        varies_on_cookie = False
        for name, value in app_headers:
            if name == "set-cookie":
                if self.names_it(value):
                    return []  # the app set, rotated or deleted the cookie itself
            elif name == "cache-control":
                cache_control = [*(cache_control or ()), value]
            else:  # vary: the adapters pass these three names only
                tokens = {token.strip().lower() for token in value.split(",")}
                varies_on_cookie = varies_on_cookie or bool(tokens & {"*", "cookie"})
        set_cookie = self.value(session_id, secure)
        if set_cookie is None:
            return []
        added: list[tuple[str, str]] = []
        if cache_control is None:
            added.append(("Cache-Control", "private"))
        else:
            directives = {
                directive.partition("=")[0].strip().lower()
                for value in cache_control
                for directive in value.split(",")
            }
            if not directives & _NOT_SHARED:
                logger.debug(
                    "Session cookie not sent: the response may be stored by shared caches."
                )
                return []
        added.append(("Set-Cookie", set_cookie))
        if not varies_on_cookie:
            added.append(("Vary", "Cookie"))
        return added
