"""OpenTelemetry for the rows that trace: with or without ops-session's session stamping.

A stamped row has a `SessionSpanProcessor` on its provider, and its request listener, which
stamps the server span that OpenTelemetry's middleware opened before the session began. The
listener is registered only while that row's own requests run (`listening`), so that the other
configurations sampled in the same process, and the servers of the load benchmark, run with none,
as an app without OpenTelemetry does. A row marked `after_a_listener` runs each batch right after a
`SessionSpanProcessor` registered its listener and was shut down, which removes it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from opentelemetry.sdk.trace import TracerProvider

from ops_session._core import RequestListener, add_request_listener, remove_request_listener
from ops_session.otel import SessionSpanProcessor

App = TypeVar("App")

# By id, holding the app too, so that no other object can take its id.
_listeners: dict[int, tuple[object, RequestListener]] = {}
_after_a_listener: dict[int, object] = {}


def provider() -> TracerProvider:
    """A provider that records spans and drops them, as one whose exporter is elsewhere."""
    return TracerProvider()


def stamped_provider() -> tuple[TracerProvider, RequestListener]:
    """A provider whose spans carry the session, and the listener that stamps server spans."""
    processor = SessionSpanProcessor()
    processor.shutdown()  # unregisters the listener: `listening` registers it per batch
    traced = TracerProvider()
    traced.add_span_processor(processor)
    return traced, processor.stamp_server_span


def stamped(app: App, listener: RequestListener) -> App:
    """Mark `app` as a stamped row whose requests need `listener` registered."""
    _listeners[id(app)] = (app, listener)
    return app


def after_a_listener(app: App) -> App:
    """Mark `app` as a row whose requests follow a span processor that was added and removed."""
    _after_a_listener[id(app)] = app
    return app


@contextmanager
def listening(app: object) -> Iterator[None]:
    """Set up a marked row's request listeners for the length of the block (see the top)."""
    if id(app) in _after_a_listener:
        SessionSpanProcessor().shutdown()  # registers its request listener, then removes it
    entry = _listeners.get(id(app))
    if entry is None:
        yield
        return
    _, listener = entry
    add_request_listener(listener)
    try:
        yield
    finally:
        remove_request_listener(listener)
