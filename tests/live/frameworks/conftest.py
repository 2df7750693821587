"""One server per framework for the whole module that asks for it, stopped by process id.

Tests choose their frameworks with `every_framework` or `websocket_frameworks`; pytest groups
the tests of one framework, so each server starts once per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tools.loopback import HOST, free_port, running

from .harness import FRAMEWORKS, Framework


@dataclass(frozen=True)
class Served:
    framework: Framework
    url: str  # the base URL of the framework's routes, its prefix included
    port: int

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def websocket_url(self, path: str = "/ws") -> str:
        return f"ws://{HOST}:{self.port}{self.framework.prefix}{path}"


def for_frameworks(frameworks: list[Framework]) -> pytest.MarkDecorator:
    """Run a test once per framework in `frameworks`, with `served` set to its server."""
    ids = [framework.name for framework in frameworks]
    return pytest.mark.parametrize("served", frameworks, indirect=True, ids=ids)


every_framework = for_frameworks(FRAMEWORKS)
websocket_frameworks = for_frameworks(
    [framework for framework in FRAMEWORKS if framework.websocket]
)


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    framework: Framework = request.param
    port = free_port()
    with running(framework.command(port), port, env=framework.env) as url:
        yield Served(framework, url + framework.prefix, port)
