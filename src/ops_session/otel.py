"""OpenTelemetry: the session on every span, and its header on every hop.  [extra: otel]

`SessionSpanProcessor` stamps each span started inside a session, whichever library starts it,
and the server span that OpenTelemetry's middleware opened before the session began.
`SessionPropagator` is a `TextMapPropagator`, registered under the `opentelemetry_propagator`
entry point as `ops_session`, so `OTEL_PROPAGATORS=tracecontext,baggage,ops_session` makes every
instrumented HTTP client carry the session header.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

try:
    from opentelemetry.context import Context, create_key, get_value, set_value
    from opentelemetry.propagators.textmap import (
        CarrierT,
        Getter,
        Setter,
        TextMapPropagator,
        default_getter,
        default_setter,
    )
    from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
    from opentelemetry.trace import SpanKind, get_current_span
    from opentelemetry.util.types import AttributeValue
except ImportError as error:
    raise ImportError(
        "ops_session.otel needs the OpenTelemetry API and SDK: install 'ops-session[otel]'."
    ) from error

from ._core import (
    SESSION_HEADER_NAME,
    Jsonable,
    SessionContext,
    add_request_listener,
    attributes_json,
    current_session,
    is_valid_session_id,
    remove_request_listener,
)

SESSION_ID_ATTRIBUTE = "session.id"
"""The OpenTelemetry semantic-convention attribute for the session id, read by Phoenix
(OpenInference) and Langfuse."""

MIRASCOPE_SESSION_ID_ATTRIBUTE = "mirascope.ops.session.id"
MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE = "mirascope.ops.session.attributes"

LANGFUSE_SESSION_ID_ATTRIBUTE = "langfuse.session.id"
"""Langfuse's own session key (opt-in); it also reads `session.id`."""

GEN_AI_CONVERSATION_ID_ATTRIBUTE = "gen_ai.conversation.id"
"""The OpenTelemetry GenAI semantic-convention key for a conversation (opt-in)."""

LANGFUSE_MAX_SESSION_ID_LENGTH = 200
"""Langfuse drops session ids longer than this, and ids with non-ASCII characters."""

_RESERVED_ATTRIBUTES = (
    SESSION_ID_ATTRIBUTE,
    MIRASCOPE_SESSION_ID_ATTRIBUTE,
    MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE,
    LANGFUSE_SESSION_ID_ATTRIBUTE,
    GEN_AI_CONVERSATION_ID_ATTRIBUTE,
)
_INT64 = range(-(2**63), 2**63)
_CACHE_SIZE = 256

_EXTRACTED_SESSION_ID = create_key("ops_session.session_id")

logger = logging.getLogger(__name__)
_warned_about_langfuse = False


class SessionSpanProcessor(SpanProcessor):
    """Set the session id and attributes on spans, for the tracing backends that group by them.

    Every span gets `session.id` and `mirascope.ops.session.id`, plus
    `mirascope.ops.session.attributes` (JSON) when the session has attributes. The session is:

    1. the current one, for every span started inside a session, by any library;
    2. otherwise the id `SessionPropagator.extract` put in the span's parent context, or the id of
       its parent span in this process, for services and workers that receive the session only
       through OpenTelemetry's propagators (no attributes travel that way).

    Spans without either are left alone. Constructing a processor also registers it with the
    session middlewares: when one starts a request's session, the server span that OpenTelemetry's
    middleware already opened for that request (`FastAPIInstrumentor`, or a WSGI middleware wrapped
    outside ours) gets the same attributes. `shutdown()` (called by the provider's) unregisters it.

    Session attributes leave the process with the spans: keep secrets out of them.

    Args:
        langfuse_session_id: Also write `langfuse.session.id`, Langfuse's own key.
        gen_ai_conversation_id: Also write `gen_ai.conversation.id`, the OpenTelemetry GenAI key.
        attribute_prefix: Also write each top-level session attribute as its own span attribute,
            named `attribute_prefix + key`: strings, numbers, booleans and lists of one of those
            as they are, `None` left out, anything else (mappings, mixed lists) as compact JSON.
            No key this processor writes may start with the prefix, so an attribute can never
            overwrite the session id: `"session.attributes."` is a good choice.

    Raises:
        ValueError: `attribute_prefix` is empty or could overwrite a session key.

    Example:
        provider.add_span_processor(SessionSpanProcessor())
    """

    def __init__(
        self,
        *,
        langfuse_session_id: bool = False,
        gen_ai_conversation_id: bool = False,
        attribute_prefix: str | None = None,
    ) -> None:
        if attribute_prefix is not None:
            _check_prefix(attribute_prefix)
        self._id_keys = (
            (SESSION_ID_ATTRIBUTE, MIRASCOPE_SESSION_ID_ATTRIBUTE)
            + ((LANGFUSE_SESSION_ID_ATTRIBUTE,) if langfuse_session_id else ())
            + ((GEN_AI_CONVERSATION_ID_ATTRIBUTE,) if gen_ai_conversation_id else ())
        )
        self._attribute_prefix = attribute_prefix
        self._stamps: dict[tuple[str, str | None], dict[str, AttributeValue]] = {}
        add_request_listener(self.stamp_server_span)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        current = current_session()
        if current is not None:
            span.set_attributes(self._stamp(current.id, current.attributes))
            return
        session_id = extracted_session_id(parent_context) or _parent_session_id(parent_context)
        if session_id is not None:
            span.set_attributes(self._stamp(session_id, None))

    def stamp_server_span(self, session: SessionContext) -> None:
        """Stamp the current span with `session` when it is a recording server span.

        The middlewares call this (a request listener) as soon as they make a request's session
        current, for the server span that was started before it.
        """
        span = get_current_span()
        if getattr(span, "kind", None) is SpanKind.SERVER and span.is_recording():
            span.set_attributes(self._stamp(session.id, session.attributes))

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        remove_request_listener(self.stamp_server_span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _stamp(
        self, session_id: str, attributes: Mapping[str, Jsonable] | None
    ) -> dict[str, AttributeValue]:
        """The span attributes for a session, computed once per id and attributes."""
        attributes_text = attributes_json(attributes)
        key = (session_id, attributes_text)
        cached = self._stamps.get(key)
        if cached is not None:
            return cached
        stamp: dict[str, AttributeValue] = dict.fromkeys(self._id_keys, session_id)
        if attributes_text is not None:
            stamp[MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE] = attributes_text
            if self._attribute_prefix is not None:
                stamp.update(_prefixed(self._attribute_prefix, json.loads(attributes_text)))
        if not _warned_about_langfuse:
            _check_langfuse_id(session_id)
        if len(self._stamps) >= _CACHE_SIZE:
            self._stamps.clear()
        self._stamps[key] = stamp
        return stamp


def _check_prefix(prefix: str) -> None:
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(
            f"attribute_prefix must be a non-empty str, got {prefix!r}; try 'session.attributes.'."
        )
    for reserved in _RESERVED_ATTRIBUTES:
        if reserved.startswith(prefix):
            raise ValueError(
                f"attribute_prefix={prefix!r} would let a session attribute named "
                f"{reserved[len(prefix) :]!r} overwrite {reserved!r}; choose a prefix that "
                "no session key starts with, such as 'session.attributes.'."
            )


def _prefixed(prefix: str, attributes: dict[str, Any]) -> dict[str, AttributeValue]:
    """Top-level session attributes as span attributes: OTel's value types as they are, or JSON."""
    stamped: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if value is None:
            continue  # a span attribute cannot be null
        if _is_attribute_value(value):
            stamped[prefix + key] = tuple(value) if isinstance(value, list) else value
        else:
            stamped[prefix + key] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return stamped


def _is_attribute_value(value: object) -> bool:
    """Whether every OpenTelemetry version takes `value` as is: a scalar or a list of one type."""
    if isinstance(value, list):
        return all(_is_scalar(item) and type(item) is type(value[0]) for item in value)
    return _is_scalar(value)


def _is_scalar(value: object) -> bool:
    # Exporters write ints as signed 64-bit; json.loads makes only exact str, bool, int, float.
    return type(value) in (str, bool, float) or (type(value) is int and value in _INT64)


def _check_langfuse_id(session_id: str) -> None:
    global _warned_about_langfuse
    if len(session_id) > LANGFUSE_MAX_SESSION_ID_LENGTH or not session_id.isascii():
        _warned_about_langfuse = True
        logger.warning(
            "Session id of %d characters%s: Langfuse ignores session ids over %d characters or "
            "with non-ASCII characters, so it will not group these traces (Phoenix will). "
            "Use shorter ASCII ids to group them in Langfuse. This is logged once per process.",
            len(session_id),
            "" if session_id.isascii() else " with non-ASCII characters",
            LANGFUSE_MAX_SESSION_ID_LENGTH,
        )


def _parent_session_id(parent_context: Context | None) -> str | None:
    """The session id this processor wrote on the span's parent, when that is a span in here."""
    attributes = getattr(get_current_span(parent_context), "attributes", None)
    value = attributes.get(MIRASCOPE_SESSION_ID_ATTRIBUTE) if attributes else None
    return value if isinstance(value, str) else None


class SessionPropagator(TextMapPropagator):
    """Carry the session id in the `Mirascope-Session-Id` header of outgoing and incoming requests.

    `inject` writes the current session's id (or, outside a session, an id that `extract` put in
    the context). `extract` reads a valid incoming id into the returned context; invalid ids are
    ignored. Only the id travels, never the attributes.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        values = getter.get(carrier, SESSION_HEADER_NAME) or getter.get(
            carrier, SESSION_HEADER_NAME.lower()
        )
        if values and is_valid_session_id(values[0]):
            return set_value(_EXTRACTED_SESSION_ID, values[0], context)
        return context if context is not None else Context()

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        current = current_session()
        session_id: Any = current.id if current else get_value(_EXTRACTED_SESSION_ID, context)
        if session_id:
            setter.set(carrier, SESSION_HEADER_NAME, session_id)

    @property
    def fields(self) -> set[str]:
        return {SESSION_HEADER_NAME}


def extracted_session_id(context: Context | None = None) -> str | None:
    """The session id that `SessionPropagator.extract` put in `context` (default: the current)."""
    value = get_value(_EXTRACTED_SESSION_ID, context)
    return value if isinstance(value, str) else None
