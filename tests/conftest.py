from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ops_session import current_session, set_outgoing_hosts
from ops_session._core import request_listeners
from ops_session.logging import SessionLogFilter
from ops_session.otel import SessionSpanProcessor

from .support.echo_server import echo_server, echo_servers
from .support.outgoing import HOSTS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_session_leaks() -> Iterator[None]:
    assert current_session() is None
    yield
    assert current_session() is None, "a test left a session current"


class Tracing(NamedTuple):
    """A tracer provider of the test's own (never the global one) and the spans it finished."""

    provider: TracerProvider
    exporter: InMemorySpanExporter


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    """Shut down after the test, which unregisters the processor's request listener."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SessionSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider, exporter)
    provider.shutdown()
    assert not request_listeners, "shutting the provider down unregisters the processor"


@pytest.fixture(scope="session")
def echo_url() -> Iterator[str]:
    """A server on 127.0.0.1 that answers with the session header it received."""
    with echo_server() as url:
        yield url


@pytest.fixture(scope="session")
def loopback_servers() -> Iterator[dict[str, str]]:
    """Echo servers on 127.0.0.1, 127.0.0.2 and 127.0.0.3: three hosts for outgoing requests."""
    with echo_servers(*HOSTS) as servers:
        yield servers


@pytest.fixture
def process_hosts() -> Iterator[Callable[[Iterable[str] | None], None]]:
    """`set_outgoing_hosts`, put back to the default after the test."""
    try:
        yield set_outgoing_hosts
    finally:
        set_outgoing_hosts(None)


@pytest.fixture
def mcp_log_lines() -> Iterator[list[str]]:
    """The lines the MCP test servers' logger writes, each stamped by `SessionLogFilter`."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.addFilter(SessionLogFilter())
    handler.setFormatter(logging.Formatter("session=%(session_id)s %(message)s"))
    logger = logging.getLogger("mcp_server")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
