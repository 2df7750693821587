"""What both middlewares decide per request, whatever the protocol: which id, which attributes."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Generic, Literal, TypeAlias, TypeVar

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

RequestT = TypeVar("RequestT")
"""What the attributes callable receives: the ASGI scope or the WSGI environ."""

OnInvalid: TypeAlias = Literal["generate", "reject"]
Attributes: TypeAlias = Mapping[str, Jsonable] | Callable[[RequestT], Mapping[str, Jsonable] | None]

logger = logging.getLogger("ops_session")

# An RFC 9110 token: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class SessionPolicy(Generic[RequestT]):
    """The middleware options, checked once, and the per-request decisions made from them."""

    __slots__ = (
        "header_name",
        "generator",
        "validator",
        "reject_invalid",
        "attributes",
        "update_request_header",
        "accepts",
        "rejection_body",
        "_constant_attributes",
        "_check_generated",
    )

    def __init__(
        self,
        *,
        header_name: str,
        generator: Callable[[], str],
        validator: Callable[[str], bool],
        on_invalid: OnInvalid,
        attributes: Attributes[RequestT] | None,
        update_request_header: bool,
    ) -> None:
        if not isinstance(header_name, str) or not _HEADER_NAME.fullmatch(header_name):
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
        self.header_name = header_name
        self.rejection_body = f"Invalid {header_name} header.\n".encode("ascii")
        self.generator = generator
        self.validator = validator
        self.reject_invalid = on_invalid == "reject"
        self.update_request_header = update_request_header
        self.attributes: Callable[[RequestT], Mapping[str, Jsonable] | None] | None = None
        self._constant_attributes: Mapping[str, Jsonable] | None = None
        if isinstance(attributes, Mapping):
            self._constant_attributes = freeze_attributes(attributes)
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
        # The default generator makes ids the default validator accepts; any other pair is
        # checked, so that a service never issues an id that it would itself refuse.
        self._check_generated = not (
            generator is generate_session_id and validator is is_valid_session_id
        )
        if self._check_generated:
            # A generator that cannot make an acceptable id fails here, when the app starts,
            # rather than on the first request that arrives without one.
            self.generate_id()

    def session_for(
        self, incoming: str | None, request: RequestT
    ) -> tuple[SessionContext, bool] | None:
        """The session a request runs in and whether its id was generated; `None` to reject.

        A valid incoming id is used as is; a missing one is generated, and an invalid one is
        generated or rejected. When the id was generated, the adapters show it to the app and
        answer with it instead of the incoming bytes.
        """
        if incoming and self.accepts(incoming):
            session_id = incoming
            generated = False
        else:
            if incoming:
                # The raw value is attacker-controlled: keep it out of logs
                # (asgi-correlation-id#71).
                logger.debug(
                    "Invalid %s header (%d characters): %s.",
                    self.header_name,
                    len(incoming),
                    "rejected" if self.reject_invalid else "replaced by a generated id",
                )
                if self.reject_invalid:
                    return None
            session_id = self.generate_id()
            generated = True
        attributes = self._constant_attributes
        if self.attributes is not None:
            computed = self.attributes(request)
            attributes = None if computed is None else freeze_attributes(computed)
        return SessionContext._trusted(session_id, attributes), generated

    def generate_id(self) -> str:
        session_id = self.generator()
        if self._check_generated and not (isinstance(session_id, str) and self.accepts(session_id)):
            raise RuntimeError(
                f"The session id generator {self.generator!r} returned {session_id!r}, which "
                "the validator rejects; make it return ids the validator accepts."
            )
        return session_id

    def _custom_check(self, session_id: str) -> bool:
        return CARRIABLE_SESSION_ID.fullmatch(session_id) is not None and bool(
            self.validator(session_id)
        )
