"""50,000 requests per server with mixed valid, missing and hostile ids, 100 connections at once.

`make soak` runs the same soak and prints its figures (docs/reliability.md).
"""

from __future__ import annotations

import pytest
from tools.loopback import free_port

from .soak import SERVERS, WARM_UP, soak

pytestmark = pytest.mark.servers

REQUESTS = 50_000
FLAT_RSS_KIB = 8 * 1024  # what the worker may grow by, allocator noise included


@pytest.mark.parametrize("server", list(SERVERS))
def test_soak_has_no_errors_no_cross_talk_and_flat_memory(server: str) -> None:
    port = free_port()
    tally, _ = soak(SERVERS[server](port), port, REQUESTS, connections=100)
    assert tally.examples == []
    assert (tally.requests, tally.errors, tally.cross_talk) == (WARM_UP + REQUESTS, 0, 0)
    first, last = tally.rss_kib
    assert last - first < FLAT_RSS_KIB, tally.rss_kib
