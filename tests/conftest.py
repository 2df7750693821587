from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from ops_session import current_session, set_outgoing_hosts

from .support.echo_server import echo_servers
from .support.outgoing import HOSTS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_session_leaks() -> Iterator[None]:
    assert current_session() is None
    yield
    assert current_session() is None, "a test left a session current"


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
