"""The span attributes a session becomes: the keys tracing backends read, and their values.

Standard library only: `otel.py` writes what `span_attributes` returns on spans, and these rules
(which keys, how attributes flatten, which ids a backend drops) read and test on their own.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeAlias

__all__ = [
    "GEN_AI_CONVERSATION_ID_ATTRIBUTE",
    "LANGFUSE_MAX_SESSION_ID_LENGTH",
    "LANGFUSE_SESSION_ID_ATTRIBUTE",
    "MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE",
    "MIRASCOPE_SESSION_ID_ATTRIBUTE",
    "SESSION_ID_ATTRIBUTE",
    "SpanValue",
    "check_attribute_prefix",
    "id_keys",
    "span_attributes",
]

SESSION_ID_ATTRIBUTE = "session.id"
"""The OpenTelemetry semantic-convention key for the session id, read by Phoenix (OpenInference)
and Langfuse."""

MIRASCOPE_SESSION_ID_ATTRIBUTE = "mirascope.ops.session.id"
MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE = "mirascope.ops.session.attributes"

LANGFUSE_SESSION_ID_ATTRIBUTE = "langfuse.session.id"
"""Langfuse's own session key (opt-in); Langfuse also reads `session.id`."""

GEN_AI_CONVERSATION_ID_ATTRIBUTE = "gen_ai.conversation.id"
"""The OpenTelemetry GenAI semantic-convention key for a conversation (opt-in)."""

LANGFUSE_MAX_SESSION_ID_LENGTH = 200
"""Langfuse ignores session ids longer than this, and ids with non-ASCII characters."""

SpanValue: TypeAlias = (
    str | bool | int | float | tuple[str, ...] | tuple[bool, ...] | tuple[int, ...]
    | tuple[float, ...]
)  # fmt: skip
"""A span attribute value that every OpenTelemetry version and exporter takes."""

_SESSION_KEYS = (
    SESSION_ID_ATTRIBUTE,
    MIRASCOPE_SESSION_ID_ATTRIBUTE,
    MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE,
    LANGFUSE_SESSION_ID_ATTRIBUTE,
    GEN_AI_CONVERSATION_ID_ATTRIBUTE,
)
_INT64 = range(-(2**63), 2**63)

logger = logging.getLogger("ops_session.otel")
_warned_about_langfuse = False


def id_keys(*, langfuse_session_id: bool, gen_ai_conversation_id: bool) -> tuple[str, ...]:
    """The keys that carry the session id: always `session.id` and Mirascope's, plus the opt-ins."""
    return (
        (SESSION_ID_ATTRIBUTE, MIRASCOPE_SESSION_ID_ATTRIBUTE)
        + ((LANGFUSE_SESSION_ID_ATTRIBUTE,) if langfuse_session_id else ())
        + ((GEN_AI_CONVERSATION_ID_ATTRIBUTE,) if gen_ai_conversation_id else ())
    )


def check_attribute_prefix(prefix: str) -> None:
    """Refuse a prefix under which a session key lies: an attribute could overwrite the id.

    Raises:
        ValueError: `prefix` is not a non-empty str, or a session key starts with it.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(
            f"attribute_prefix must be a non-empty str, got {prefix!r}; try 'session.attributes.'."
        )
    for key in _SESSION_KEYS:
        if key.startswith(prefix):
            raise ValueError(
                f"attribute_prefix={prefix!r} would let a session attribute named "
                f"{key[len(prefix) :]!r} overwrite {key!r}; choose a prefix that no session key "
                "starts with, such as 'session.attributes.'."
            )


def span_attributes(
    session_id: str,
    attributes_json: str | None,
    *,
    id_keys: tuple[str, ...],
    attribute_prefix: str | None,
) -> dict[str, SpanValue]:
    """The span attributes for a session, from its id and its attributes' compact JSON.

    With `attribute_prefix`, each top-level attribute also becomes `attribute_prefix + key`:
    strings, numbers, booleans and lists of one of those as they are, `None` left out (a span
    attribute cannot be null), anything else as compact JSON. Top-level keys are unique and
    `check_attribute_prefix` keeps the session keys out from under the prefix, so no two values
    share a key. The first id Langfuse would drop is logged once per process.
    """
    stamp: dict[str, SpanValue] = dict.fromkeys(id_keys, session_id)
    if attributes_json is not None:
        stamp[MIRASCOPE_SESSION_ATTRIBUTES_ATTRIBUTE] = attributes_json
        if attribute_prefix is not None:
            for key, value in json.loads(attributes_json).items():
                if value is not None:
                    stamp[attribute_prefix + key] = _span_value(value)
    if not _warned_about_langfuse:
        _warn_if_langfuse_drops(session_id)
    return stamp


def _span_value(value: Any) -> SpanValue:
    if isinstance(value, list):
        if all(_is_scalar(item) and type(item) is type(value[0]) for item in value):
            return tuple(value)
    elif _is_scalar(value):
        return value  # type: ignore[no-any-return]
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _is_scalar(value: object) -> bool:
    # Exporters write ints as signed 64-bit; json.loads makes only exact str, bool, int, float.
    return type(value) in (str, bool, float) or (type(value) is int and value in _INT64)


def _warn_if_langfuse_drops(session_id: str) -> None:
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
