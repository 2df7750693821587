"""The outgoing half of the `baggage` option: the request's session id in OpenTelemetry baggage.

While a middleware runs a request with `baggage=True`, OpenTelemetry's context holds
`session.id=<id>` in its baggage, so OpenTelemetry's own `baggage` propagator writes it into every
call the request makes through an instrumented client: HTTP, gRPC, Temporal, message brokers.
Only the id, never the attributes: baggage goes wherever trace context goes.  [extra: otel]
"""

from __future__ import annotations

try:
    from opentelemetry.baggage import set_baggage
    from opentelemetry.context import attach, detach
except ImportError as error:
    raise ImportError(
        "The baggage option needs the OpenTelemetry API: install 'ops-session[otel]'."
    ) from error

from ._baggage import BAGGAGE_KEY
from ._outgoing import may_carry_session

__all__ = ["attach_session_baggage", "detach"]


def attach_session_baggage(session_id: str) -> object | None:
    """Put `session.id` into the current context's baggage; the token for `detach`, or `None`.

    The stock propagator sends baggage to every host an instrumented client calls and never
    sees the URL, so baggage is a carrier without a host: the id goes in only when the outgoing
    rule names the `baggage` carrier (`OPS_SESSION_OUTGOING_CARRIERS`), never by default.
    """
    if not may_carry_session("baggage", None):
        return None
    return attach(set_baggage(BAGGAGE_KEY, session_id))
