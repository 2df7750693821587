from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ops_session._rules
from ops_session import (
    current_session,
    set_outgoing_carriers,
    set_outgoing_hosts,
    set_session_header_name,
)
from ops_session._core import request_listeners
from ops_session._variables import forget_variables
from ops_session.logging import SessionLogFilter
from ops_session.otel import SessionSpanProcessor

from .support.echo_server import echo_server, echo_servers
from .support.outgoing import HOSTS
from .support.wheel import build_wheel


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def variables_read_afresh() -> Iterator[None]:
    """`OPS_SESSION_*` variables are read once per process: once per test, here."""
    forget_variables()
    yield
    forget_variables()


@pytest.fixture(autouse=True)
def global_propagator_restored() -> Iterator[None]:
    """Put OpenTelemetry's global propagator back after each test.

    A library under test may replace it: Mirascope's `propagated_context` installs its own
    propagator globally the first time it runs. Later tests' instrumentations inject through
    the global one, so left replaced it would decide what they send, in whatever order the
    tests run.
    """
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


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
def process_carriers() -> Iterator[Callable[[Iterable[str] | None], None]]:
    """`set_outgoing_carriers`, put back to the default after the test."""
    try:
        yield set_outgoing_carriers
    finally:
        set_outgoing_carriers(None)


@pytest.fixture
def process_header_name() -> Iterator[Callable[[str | None], None]]:
    """`set_session_header_name`, put back to the default after the test."""
    try:
        yield set_session_header_name
    finally:
        set_session_header_name(None)


@pytest.fixture
def fresh_outgoing_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what the outgoing rule already said once, the hooks' rules and the propagators."""
    monkeypatch.setattr(ops_session._rules, "_said", set())
    monkeypatch.setattr(ops_session._rules, "_client_rules", {})
    monkeypatch.setattr(ops_session._rules, "_propagator_exists", False)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as users get it, built once for every test that installs it somewhere fresh."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


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
