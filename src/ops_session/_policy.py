"""What both middlewares decide per request, whatever the protocol: which id, which attributes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar, Unpack

from ._baggage import BAGGAGE_HEADER_NAME, baggage_session_id
from ._cookie import SessionCookie
from ._core import (
    CARRIABLE_SESSION_ID,
    SESSION_HEADER_NAME,
    VALID_SESSION_ID,
    Jsonable,
    SessionContext,
    freeze_attributes,
    generate_session_id,
    is_valid_session_id,
)
from ._options import DEFAULT_COOKIE_MAX_AGE, Attributes, OnInvalid, SessionOptions, resolve_options
from ._sources import (
    HEADER_NAME,
    RequestReader,
    check_source_options,
    cookie_value,
    query_value,
)

__all__ = [
    "DEFAULT_COOKIE_MAX_AGE",
    "FROM_QUERY",
    "Attributes",
    "OnInvalid",
    "SessionPolicy",
]

RequestT = TypeVar("RequestT")
"""What the attributes callable receives: the ASGI scope or the WSGI environ."""

FROM_QUERY: Final = 2
"""`session_for`'s second value when the id came from the query parameter: a link can carry
such an id to someone else's browser, so it is never written into the session cookie."""

logger = logging.getLogger("ops_session")

# The slots' own setters: a third of the cost of object.__setattr__ on a frozen class. The
# adapters use them too, for the sessions they build without calling `session_for`.
set_id = SessionContext.__dict__["id"].__set__
set_attributes = SessionContext.__dict__["attributes"].__set__
new_instance = object.__new__

_BAGGAGE_PLACE = "session.id baggage entry"


def _no_detach(token: Any) -> None:  # pragma: no cover - never called: no token without baggage
    pass


class SessionPolicy(Generic[RequestT]):
    """The middleware options, checked once, and the per-request decisions made from them.

    An adapter passes its `reader` (a `RequestReader` over its request type) so that the
    `also_accept`, `query_param` and `cookie` options can be read; with `set_cookie`,
    `session_cookie` says what to add to each response when it starts.
    """

    __slots__ = (
        "header_name",
        "generator",
        "validator",
        "reject_invalid",
        "attributes",
        "update_request_header",
        "also_accept",
        "query_param",
        "cookie",
        "set_cookie",
        "cookie_max_age",
        "session_cookie",
        "baggage",
        "attach_baggage",
        "detach_baggage",
        "accepts",
        "rejection_body",
        "constant_attributes",
        "_new_id",
        "_reader",
        "_header_place",
        "_warned_client_changed",
        "per_response",
    )

    def __init__(
        self,
        *,
        reader: RequestReader[RequestT] | None = None,
        where: str = "SessionPolicy()",
        **given: Unpack[SessionOptions[RequestT]],
    ) -> None:
        options = resolve_options(given, where)
        header_name = options["header_name"]
        generator = options["generator"]
        validator = options["validator"]
        on_invalid = options["on_invalid"]
        attributes = options["attributes"]
        update_request_header = options["update_request_header"]
        query_param = options["query_param"]
        cookie = options["cookie"]
        set_cookie = options["set_cookie"]
        cookie_max_age = options["cookie_max_age"]
        baggage = options["baggage"]
        if not isinstance(header_name, str) or not HEADER_NAME.fullmatch(header_name):
            raise ValueError(
                f"header_name must be an HTTP header name such as {SESSION_HEADER_NAME!r}, "
                f"got {header_name!r}."
            )
        if not callable(generator):
            raise TypeError(
                f"generator must be a callable returning a new session id, got {generator!r}."
            )
        if not callable(validator):
            raise TypeError(
                "validator must be a callable taking an incoming id and returning True to "
                f"accept it, got {validator!r}."
            )
        if on_invalid not in ("generate", "reject"):
            raise ValueError(f"on_invalid must be 'generate' or 'reject', got {on_invalid!r}.")
        if not isinstance(update_request_header, bool):
            raise TypeError(f"update_request_header must be a bool, got {update_request_header!r}.")
        self.header_name: str = header_name
        self.also_accept = check_source_options(
            header_name, options["also_accept"], query_param, cookie, set_cookie, cookie_max_age
        )
        self.query_param: str | None = query_param
        self.cookie: str | None = cookie
        self.set_cookie: bool = set_cookie
        self.cookie_max_age: int = cookie_max_age
        if not isinstance(baggage, bool):
            raise TypeError(f"baggage must be a bool, got {baggage!r}.")
        self.baggage: bool = baggage
        # The outgoing half (issue 29): set when `baggage`, the adapters' one truth test otherwise.
        self.attach_baggage: Callable[[str], object | None] | None = None
        self.detach_baggage: Callable[[Any], None] = _no_detach
        if baggage:
            from ._otel_baggage import attach_session_baggage, detach

            self.attach_baggage = attach_session_baggage
            self.detach_baggage = detach
        self._header_place = f"{header_name} header"
        self._warned_client_changed = False
        # Any source besides the header needs the adapter's reader; without one it stays None,
        # and requests without the header take the same path as before these options existed.
        self._reader: RequestReader[RequestT] | None = None
        if self.also_accept or query_param is not None or cookie is not None or baggage:
            if reader is None:
                raise TypeError(
                    "This adapter cannot read ids from other headers, baggage, query "
                    "parameters or cookies; leave also_accept, baggage, query_param and "
                    "cookie unset."
                )
            self._reader = reader
        places = [f"the {name} header" for name in (header_name, *self.also_accept)]
        if baggage:
            places.append(f"the {_BAGGAGE_PLACE}")
        if cookie is not None:
            places.append(f"the {cookie} cookie")
        if query_param is not None:
            places.append(f"the {query_param} query parameter")
        self.rejection_body = (
            f"Invalid {header_name} header.\n"
            if len(places) == 1
            else f"Invalid session id in {', '.join(places[:-1])} or {places[-1]}.\n"
        ).encode("ascii")
        self.generator: Callable[[], str] = generator
        self.validator: Callable[[str], bool] = validator
        self.reject_invalid = on_invalid == "reject"
        self.update_request_header: bool = update_request_header
        self.attributes: Callable[[RequestT], Mapping[str, Jsonable] | None] | None = None
        self.constant_attributes: Mapping[str, Jsonable] | None = None
        if isinstance(attributes, Mapping):
            self.constant_attributes = freeze_attributes(attributes)
        elif callable(attributes):
            self.attributes = attributes
        elif attributes is not None:
            raise TypeError(
                "attributes must be a mapping, or a callable taking the request and returning "
                f"one, got {attributes!r}."
            )
        # Called on every request's id: the default check is a bare regex match.
        self.accepts: Callable[[str], object] = (
            VALID_SESSION_ID.fullmatch if validator is is_valid_session_id else self._custom_check
        )
        self.session_cookie: SessionCookie | None = None
        if set_cookie and cookie is not None:  # check_source_options refused one without the other
            self.session_cookie = SessionCookie(
                cookie, cookie_max_age, safe_ids=validator is is_valid_session_id
            )
        # Whether a request needs more than the session header when its response starts: one
        # truth test on the hot path when it does not.
        self.per_response = self.session_cookie is not None or self.attributes is not None
        # What makes a new id. The default generator makes ids the default validator accepts;
        # any other pair is checked, so that a service never issues an id it would itself refuse.
        self._new_id: Callable[[], str]
        if generator is generate_session_id and validator is is_valid_session_id:
            self._new_id = generator
        else:
            # A generator that cannot make an acceptable id fails here, when the app starts,
            # rather than on the first request that arrives without one.
            self._checked_id()
            self._new_id = self._checked_id

    def session_for(
        self, incoming: str | None, request: RequestT
    ) -> tuple[SessionContext, int] | None:
        """The session a request runs in and where its id came from; `None` to reject.

        `incoming` is the value of the `header_name` header. A valid one is used as is.
        Otherwise the other configured places are read (see `_other_id`); a missing id is
        generated, and an invalid one is generated or rejected. The second value is `False`
        when the id is the header's own value, and true otherwise (generated, or read from
        another place; `FROM_QUERY` from the query parameter): the adapters then show it to the
        app in `header_name` and answer with it instead of the incoming bytes.
        """
        if incoming and self.accepts(incoming):
            return self._session(incoming, False, request)
        return self.replacement_session(incoming, request)

    def replacement_session(
        self, incoming: str | None, request: RequestT
    ) -> tuple[SessionContext, int] | None:
        """`session_for` when `incoming` is missing or was refused by `accepts` already.

        For the adapters that decide the common cases themselves (`plain_decisions`), so that
        an invalid id is not checked twice.
        """
        reader = self._reader
        found: tuple[str, str, bool, int] | None = (
            (incoming, self._header_place, False, True) if incoming else None
        )
        if reader is not None:
            found = self._other_id(reader, found, request)
            if found is not None and found[2]:
                return self._session(found[0], found[3], request)
        if found is not None:
            if logger.isEnabledFor(logging.DEBUG):
                self._log_invalid(found[1], found[0])
            if self.reject_invalid:
                return None
        return self._session(self._new_id(), True, request)

    def plain_replacement_id(self, incoming: str) -> str | None:
        """The id of a request whose header id `accepts` refused, where `plain_decisions` gave
        both values (no other place to read an id from): a new one, or `None` to reject. Its
        session's attributes are `constant_attributes`, and its origin true, as
        `replacement_session` would decide, one call and one tuple cheaper."""
        if logger.isEnabledFor(logging.DEBUG):
            self._log_invalid(self._header_place, incoming)
        return None if self.reject_invalid else self._new_id()

    def _session(
        self, session_id: str, origin: int, request: RequestT
    ) -> tuple[SessionContext, int]:
        if self.attributes is None:
            attributes = self.constant_attributes
        else:
            computed = self.attributes(request)
            attributes = None if computed is None else freeze_attributes(computed)
        # The id and attributes are checked and frozen already: `SessionContext.__init__` would
        # do that again, at three times the cost. `tests/test_policy.py` pins the fields set.
        context = new_instance(SessionContext)
        set_id(context, session_id)
        set_attributes(context, attributes)
        return context, origin

    def plain_decisions(self) -> tuple[Callable[[str], object] | None, Callable[[], str] | None]:
        """What an adapter may decide itself, without calling `session_for`: the common cases.

        The first value, when not `None`, accepts a non-empty header id that `session_for` would
        use as is; the second, when not `None`, makes the id of a request without the header.
        Either way the session's attributes are `constant_attributes`. `None` where the options
        need `session_for` (attributes computed per request; other places to read the id from).
        """
        if self.attributes is not None:
            return None, None
        return self.accepts, (self._new_id if self._reader is None else None)

    def _log_invalid(self, place: str, value: str) -> None:
        # The raw value is attacker-controlled: keep it out of logs (asgi-correlation-id#71).
        logger.debug(
            "Invalid %s (%d characters): %s.",
            place,
            len(value),
            "rejected" if self.reject_invalid else "replaced by a generated id",
        )

    def _other_id(
        self,
        reader: RequestReader[RequestT],
        found: tuple[str, str, bool, int] | None,
        request: RequestT,
    ) -> tuple[str, str, bool, int] | None:
        """The value to use when `header_name` holds no valid id: `(value, place, valid, origin)`.

        `found` is the invalid `header_name` value, if any. The other header names come next,
        in order, and the first valid value wins. Only when no header is present at all does
        the `session.id` baggage entry, then the cookie, then the query parameter, decide: the
        first present one is used when valid and treated like an invalid header otherwise. The
        cookie comes before the query parameter because only the site can set it, while anyone
        can send a link whose query parameter names an id they know (session fixation; OWASP
        and PHP's `use_only_cookies`). `None` when no place holds a value.
        """
        for name in self.also_accept:
            value = reader.header(request, name)
            if value:
                if self.accepts(value):
                    return value, f"{name} header", True, True
                found = found or (value, f"{name} header", False, True)
        if found is not None:
            return found
        if self.baggage:
            # Issue 29: the one call into the baggage reader; the session header wins over it.
            value = baggage_session_id(reader.header(request, BAGGAGE_HEADER_NAME))
            if value:
                return value, _BAGGAGE_PLACE, bool(self.accepts(value)), True
        if self.cookie is not None:
            cookie_header = reader.cookie_header(request)
            value = None if cookie_header is None else cookie_value(cookie_header, self.cookie)
            if value:
                return value, f"{self.cookie} cookie", bool(self.accepts(value)), True
        if self.query_param is not None:
            value = query_value(reader.query_string(request), self.query_param)
            if value:
                place = f"{self.query_param} query parameter"
                return value, place, bool(self.accepts(value)), FROM_QUERY
        return None

    def invalid_cookie(self, request: RequestT) -> bool:
        """Whether the request carries the session cookie with a value that is not a valid id.

        A rejected request with such a cookie gets it removed, so that a stale cookie does not
        lock the browser out until it expires.
        """
        if self._reader is None or self.cookie is None:
            return False
        cookie_header = self._reader.cookie_header(request)
        value = None if cookie_header is None else cookie_value(cookie_header, self.cookie)
        return bool(value) and not self.accepts(value)  # type: ignore[arg-type]

    def client_changed(self) -> None:
        """Say once that an inner layer changed the client address after `attributes` ran.

        The session, with its attributes, exists before any layer inside the middleware runs,
        since those layers run in it: an attributes callable cannot see what they change later.
        """
        if not self._warned_client_changed:
            self._warned_client_changed = True
            logger.warning(
                "A layer inside the session middleware changed the request's client address "
                "after the attributes callable read it (uvicorn's ProxyHeadersMiddleware or "
                "werkzeug's ProxyFix, say), so session attributes hold the address it saw. Move "
                "that layer outside the session middleware (uvicorn --proxy-headers, or wrap "
                "the app you serve) to give the callable the corrected address. Logged once."
            )

    def _checked_id(self) -> str:
        """A generated id that the validator accepts; an error that says so otherwise."""
        session_id = self.generator()
        if not (isinstance(session_id, str) and self.accepts(session_id)):
            raise RuntimeError(
                f"The session id generator {self.generator!r} returned {session_id!r}, which "
                "the validator rejects; make it return ids the validator accepts."
            )
        return session_id

    def _custom_check(self, session_id: str) -> bool:
        return CARRIABLE_SESSION_ID.fullmatch(session_id) is not None and bool(
            self.validator(session_id)
        )
