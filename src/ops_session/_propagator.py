"""The `ops_session` propagator: the session header on every hop OpenTelemetry propagates.

OpenTelemetry hands a propagator the carrier alone, never where it goes. So `inject` asks
`may_carry_session` with what the carrier shows: an HTTP request's `Host` header (httpx's
headers hold it) or, for a carrier without one, its kind, named after the library whose
instrumentation calls the propagator (`celery`, `kafka`, `grpc`, ...). Propagators must never
raise into the call they instrument: any error is said once in the log, and nothing is sent.
Imported by `ops_session.otel`, which is the public home of `SessionPropagator`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from types import FrameType

from opentelemetry.context import Context, create_key, get_value, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from ._core import current_session, is_valid_session_id
from ._header import SESSION_HEADER_NAME
from ._outgoing import may_carry_session, outgoing_header_name
from ._rules import note_propagator, say_once

__all__ = ["SessionPropagator", "carrier_kind", "extracted_session_id"]

_EXTRACTED_SESSION_ID = create_key("ops_session.session_id")

# Modules between an instrumentation and `inject`: the global and composite propagators.
_PROPAGATION_MODULES = ("opentelemetry.propagate", "opentelemetry.propagators", __name__)
_MAX_FRAMES = 16
# OpenTelemetry's HTTP client instrumentations, by package name: their carriers are headers.
_HTTP_LIBRARIES = frozenset(
    {"aiohttp_client", "botocore", "httpx", "requests", "tornado", "urllib", "urllib3"}
)
# Several libraries serve one kind of carrier; other libraries are their own kind.
_KINDS = {
    "aio_pika": "rabbitmq",
    "aiokafka": "kafka",
    "confluent_kafka": "kafka",
    "fastmcp": "mcp",
    "kafka": "kafka",
    "mcp": "mcp",
    "pika": "rabbitmq",
    "ray": "ray",
    "temporalio": "temporal",
}


class SessionPropagator(TextMapPropagator):
    """Carry the session id in the session header of outgoing and incoming requests.

    `inject` writes the current session's id (or, outside a session, an id that `extract` put
    in the context) where `may_carry_session` allows: into HTTP headers by their `Host`, into
    other carriers by their kind (`OPS_SESSION_OUTGOING_CARRIERS`). A header already holding
    that id is removed from a hop to a host the rule refuses, since a redirect copies it; a
    header holding another id, the caller's, stands. `extract` reads a valid incoming id into
    the returned context; invalid ids are ignored. Only the id travels, never the attributes.
    The header is the process-wide `session_header_name()`. Neither method ever raises.
    """

    def __init__(self) -> None:
        note_propagator()

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        try:
            session_id = _incoming_id(carrier, getter)
        except Exception as error:  # a propagator must not raise into the instrumented call
            _say_failed("extract", error)
            session_id = None
        if session_id is not None:
            return set_value(_EXTRACTED_SESSION_ID, session_id, context)
        return context if context is not None else Context()

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        try:
            _inject(carrier, context, setter, carrier_kind(sys._getframe(1)))
        except Exception as error:  # a propagator must not raise into the instrumented call
            _say_failed("inject", error)

    @property
    def fields(self) -> set[str]:
        return {outgoing_header_name() or SESSION_HEADER_NAME}


def _inject(
    carrier: CarrierT, context: Context | None, setter: Setter[CarrierT], kind: str
) -> None:
    current = current_session()
    session_id = current.id if current else get_value(_EXTRACTED_SESSION_ID, context)
    name = outgoing_header_name()
    if not isinstance(session_id, str) or name is None:
        return
    host = _header(carrier, "Host") if kind in ("http", "other") else None
    if host is not None:
        kind, host = "http", _host_of(host)
    present = _header(carrier, name)
    if present is None:
        if may_carry_session(kind, host):
            setter.set(carrier, name, session_id)
    elif present == session_id and host is not None and not may_carry_session(kind, host):
        # Ours, copied to a redirect's hop (httpx copies the headers; OpenTelemetry's
        # instrumentation injects again): that host may not have it.
        _remove(carrier, name)


def carrier_kind(frame: FrameType | None) -> str:
    """The kind of carrier `inject` was given, from the module that called it: `frame`'s or above.

    The first module outside OpenTelemetry's propagation names it: an instrumentation
    (`opentelemetry.instrumentation.celery`) by its library, any other module by its package
    (`ray.util.tracing`), and `"other"` when neither is known.
    """
    module = ""
    for _ in range(_MAX_FRAMES):
        if frame is None:
            break
        name = frame.f_globals.get("__name__")
        if not isinstance(name, str) or not name.startswith(_PROPAGATION_MODULES):
            module = name if isinstance(name, str) else ""
            break
        frame = frame.f_back
    parts = module.split(".")
    if parts[:2] == ["opentelemetry", "instrumentation"] and len(parts) > 2:
        library = parts[2]
        if library in _HTTP_LIBRARIES:
            return "http"
        return _KINDS.get(library, library)
    return _KINDS.get(parts[0], "other")


def _incoming_id(carrier: CarrierT, getter: Getter[CarrierT]) -> str | None:
    name = outgoing_header_name()
    if name is None:
        return None
    values = getter.get(carrier, name)
    if not values:
        # Carriers keep names as sent; match in any case, as extract_session_id does.
        wanted = name.lower()
        for key in getter.keys(carrier):
            if isinstance(key, str) and key.lower() == wanted:
                values = getter.get(carrier, key)
                break
    value = values[0] if isinstance(values, list | tuple) and values else None
    return value if isinstance(value, str) and is_valid_session_id(value) else None


def _header(carrier: object, name: str) -> str | None:
    """The first value of header `name` in a mapping carrier, in any case; names not str skipped."""
    if not isinstance(carrier, Mapping):
        return None
    value = carrier.get(name)
    if value is None:
        wanted = name.lower()
        value = carrier.get(wanted)
        if value is None:
            for key in carrier:
                if isinstance(key, str) and key.lower() == wanted:
                    value = carrier[key]
                    break
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def _remove(carrier: object, name: str) -> None:
    if isinstance(carrier, MutableMapping):
        wanted = name.lower()
        for key in [key for key in carrier if isinstance(key, str) and key.lower() == wanted]:
            del carrier[key]


def _host_of(value: str) -> str:
    """The host of a `Host` header: without the port, and an IPv6 address without brackets."""
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


def _say_failed(method: str, error: Exception) -> None:
    say_once(
        ("propagator", method, type(error)),
        logging.WARNING,
        "The ops_session propagator's %s failed and carried no session id (%s: %s); the "
        "instrumented call went on without it.",
        method,
        type(error).__name__,
        error,
    )


def extracted_session_id(context: Context | None = None) -> str | None:
    """The session id that `SessionPropagator.extract` put in `context` (default: the current)."""
    value = get_value(_EXTRACTED_SESSION_ID, context)
    return value if isinstance(value, str) else None
