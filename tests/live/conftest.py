"""Servers that several live test modules share: Redis (emptied for each test) and Phoenix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from tools.phoenix import Phoenix, running_phoenix
from tools.redis_server import redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a private `redis-server` on a free loopback port, persistence off."""
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """`redis_url` with database 0, emptied before the test."""
    client = redis.Redis.from_url(f"{redis_url}/0")
    client.flushall()
    client.close()
    yield f"{redis_url}/0"


@pytest.fixture(scope="session")
def phoenix() -> Iterator[Phoenix]:
    """Arize Phoenix on free loopback ports, with an empty database (tests use unique sessions)."""
    with running_phoenix() as started:
        yield started
