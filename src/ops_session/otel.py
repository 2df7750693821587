"""OpenTelemetry: the session on every span, and its header on every hop.  [extra: otel]

`SessionSpanProcessor` stamps each span started inside a session, whichever library starts it,
and the server span that OpenTelemetry's middleware opened before the session began.
`SessionPropagator` is a `TextMapPropagator`, registered under the `opentelemetry_propagator`
entry point as `ops_session`, so `OTEL_PROPAGATORS=tracecontext,baggage,ops_session` makes every
instrumented client carry the session header where the outgoing rule allows (`_propagator.py`).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

try:
    from opentelemetry.context import Context, get_current
    from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
    from opentelemetry.trace import SpanKind, get_current_span
    from opentelemetry.util.types import AttributeValue
except ImportError as error:
    raise ImportError(
        "ops_session.otel needs the OpenTelemetry API and SDK: install 'ops-session[otel]'."
    ) from error

from ._core import (
    Jsonable,
    SessionContext,
    add_request_listener,
    attributes_json,
    current_session,
    remove_request_listener,
)
from ._propagator import SessionPropagator, extracted_session_id
from ._span_attributes import (
    GEN_AI_CONVERSATION_ID_ATTRIBUTE,
    LANGFUSE_SESSION_ID_ATTRIBUTE,
    MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE,
    MIRASCOPE_SESSION_ID_ATTRIBUTE,
    SESSION_ID_ATTRIBUTE,
    check_attribute_prefix,
    id_keys,
    span_attributes,
)

__all__ = [
    "GEN_AI_CONVERSATION_ID_ATTRIBUTE",
    "LANGFUSE_SESSION_ID_ATTRIBUTE",
    "MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE",
    "MIRASCOPE_SESSION_ID_ATTRIBUTE",
    "SESSION_ID_ATTRIBUTE",
    "SessionPropagator",
    "SessionSpanProcessor",
    "extracted_session_id",
]

_CACHE_SIZE = 256


class SessionSpanProcessor(SpanProcessor):
    """Set the session id and attributes on spans, for the tracing backends that group by them.

    Every span gets `session.id` and `mirascope.ops.session.id`, plus
    `mirascope.ops.session.attributes` (JSON) when the session has attributes. The session is:

    1. the current one, for every span started inside a session, by any library;
    2. otherwise the id `SessionPropagator.extract` put in the span's parent context, or the id of
       its parent span in this process, for services and workers that receive the session only
       through OpenTelemetry's propagators (no attributes travel that way).

    Spans without either are left alone, and a key the span was started with (its creator's own
    `session.id`, say) is kept. When a session middleware starts a request's session, the server
    span that OpenTelemetry's middleware already opened for that request (`FastAPIInstrumentor`,
    or a WSGI middleware wrapped outside ours) gets the same attributes, if this processor saw it
    start: a processor stamps only its own provider's spans. It listens to the middlewares from
    its first server span on, by weak reference, so a processor dropped with its provider stops
    listening; `shutdown()` (called by the provider's) stops it at once.

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
            check_attribute_prefix(attribute_prefix)
        self._id_keys = id_keys(
            langfuse_session_id=langfuse_session_id, gen_ai_conversation_id=gen_ai_conversation_id
        )
        self._attribute_prefix = attribute_prefix
        self._stamps: dict[tuple[str, str | None], Mapping[str, AttributeValue]] = {}
        # The spans of one request share its SessionContext: one identity check finds its stamp.
        self._last: tuple[SessionContext | None, Mapping[str, AttributeValue]] = (None, {})
        # The server spans of this processor's provider that are open now: the only ones the
        # request listener stamps. Weak, so that a span never ended is not kept.
        self._server_spans: weakref.WeakSet[Span] = weakref.WeakSet()
        self._listening = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.kind is SpanKind.SERVER:
            self._server_spans.add(span)
            if not self._listening:
                # Here rather than in __init__: a processor added again after shutdown() listens
                # again, and one never used by a server never costs a request anything.
                self._listening = True
                add_request_listener(self.stamp_server_span)
        current = current_session()
        if current is not None:
            _set_unset(span, self._session_stamp(current))
            return
        context = parent_context if parent_context is not None else get_current()
        session_id = extracted_session_id(context) or _parent_session_id(context)
        if session_id is not None:
            _set_unset(span, self._stamp(session_id, None))

    def stamp_server_span(self, session: SessionContext) -> None:
        """Stamp the current span with `session` when it is a recording server span of ours.

        The middlewares call this (a request listener) as soon as they make a request's session
        current, for the server span that was started before it. Spans of other providers are
        left to their own processors.
        """
        span = get_current_span()
        if span in self._server_spans and span.is_recording():
            span.set_attributes(self._session_stamp(session))

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is SpanKind.SERVER:
            self._server_spans.discard(span)  # type: ignore[arg-type]  # the same _Span

    def shutdown(self) -> None:
        self._listening = False
        remove_request_listener(self.stamp_server_span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _session_stamp(self, session: SessionContext) -> Mapping[str, AttributeValue]:
        last_session, stamp = self._last
        if last_session is not session:
            stamp = self._stamp(session.id, session.attributes)
            self._last = (session, stamp)
        return stamp

    def _stamp(
        self, session_id: str, attributes: Mapping[str, Jsonable] | None
    ) -> Mapping[str, AttributeValue]:
        """The span attributes for a session, computed once per id and attributes."""
        key = (session_id, attributes_json(attributes))
        stamp = self._stamps.get(key)
        if stamp is None:
            stamp = span_attributes(
                session_id, key[1], id_keys=self._id_keys, attribute_prefix=self._attribute_prefix
            )
            if len(self._stamps) >= _CACHE_SIZE:
                self._stamps.clear()
            self._stamps[key] = stamp
        return stamp


def _set_unset(span: Span, stamp: Mapping[str, AttributeValue]) -> None:
    """Set the stamp's keys the span was not started with: its creator's values win."""
    # The attributes themselves: `span.attributes` would copy them into a new proxy per span.
    existing = span._attributes
    if existing and not existing.keys().isdisjoint(stamp):
        stamp = {key: value for key, value in stamp.items() if key not in existing}
    span.set_attributes(stamp)


def _parent_session_id(context: Context) -> str | None:
    """The session id this processor wrote on the span's parent, when that is a span in here."""
    attributes = getattr(get_current_span(context), "attributes", None)
    value = attributes.get(MIRASCOPE_SESSION_ID_ATTRIBUTE) if attributes else None
    return value if isinstance(value, str) else None
