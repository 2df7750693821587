"""OpenTelemetry: the session on every span, and its header on every hop.  [extra: otel]

`SessionSpanProcessor` stamps each span started inside a session, whichever library starts it.
`SessionPropagator` is a `TextMapPropagator`, registered under the `opentelemetry_propagator`
entry point as `ops_session`, so `OTEL_PROPAGATORS=tracecontext,baggage,ops_session` makes every
instrumented HTTP client carry the session header.
"""

from __future__ import annotations

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
except ImportError as error:
    raise ImportError(
        "ops_session.otel needs the OpenTelemetry API and SDK: install 'ops-session[otel]'."
    ) from error

from ._core import (
    SESSION_HEADER_NAME,
    attributes_json,
    current_session,
    extract_session_id,
    is_valid_session_id,
)

SESSION_ID_ATTRIBUTE = "session.id"
"""The OpenTelemetry semantic-convention attribute for the session id."""

MIRASCOPE_SESSION_ID_ATTRIBUTE = "mirascope.ops.session.id"
MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE = "mirascope.ops.session.attributes"

_EXTRACTED_SESSION_ID = create_key("ops_session.session_id")


class SessionSpanProcessor(SpanProcessor):
    """Set the session id and attributes on every span started while a session is current.

    Spans get `session.id` and `mirascope.ops.session.id`, plus
    `mirascope.ops.session.attributes` (JSON) when the session has attributes. Spans started
    outside a session are left alone. Session attributes leave the process with the spans:
    keep secrets out of them.

    Example:
        provider.add_span_processor(SessionSpanProcessor())
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        current = current_session()
        if current is None:
            return
        span.set_attribute(SESSION_ID_ATTRIBUTE, current.id)
        span.set_attribute(MIRASCOPE_SESSION_ID_ATTRIBUTE, current.id)
        attributes = attributes_json(current.attributes)
        if attributes is not None:
            span.set_attribute(MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE, attributes)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


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
        values = getter.get(carrier, SESSION_HEADER_NAME)
        if not values:
            # Carriers keep names as sent; match in any case, as extract_session_id does.
            wanted = SESSION_HEADER_NAME.lower()
            for key in getter.keys(carrier):
                if isinstance(key, str) and key.lower() == wanted:
                    values = getter.get(carrier, key)
                    break
        if values and isinstance(values[0], str) and is_valid_session_id(values[0]):
            return set_value(_EXTRACTED_SESSION_ID, values[0], context)
        return context if context is not None else Context()

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        if isinstance(carrier, Mapping) and extract_session_id(carrier) is not None:
            return  # a header the caller set, in any case, stands (as in inject_session)
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
