from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops_session import current_session


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_session_leaks() -> Iterator[None]:
    assert current_session() is None
    yield
    assert current_session() is None, "a test left a session current"
