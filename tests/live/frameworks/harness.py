"""Every framework the package claims, how its app is served, and what it has.

Each runs under a real server on a free 127.0.0.1 port, in its own process, which the fixture
stops by process id: the server its users deploy with where it has one of its own (aiohttp,
Quart's Hypercorn), uvicorn for the other ASGI apps, gunicorn or waitress for the WSGI ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from tools.loopback import HOST

APPS = "tests.live.frameworks.apps"


@dataclass(frozen=True)
class Framework:
    name: str
    command: Callable[[int], list[str]]
    websocket: bool
    prefix: str = ""  # where the app's routes are, for apps mounted inside another
    env: dict[str, str] = field(default_factory=dict)


def module(*arguments: str) -> list[str]:
    return [sys.executable, "-m", *arguments]


def uvicorn(app: str, lifespan: str = "on") -> Callable[[int], list[str]]:
    """`lifespan="on"` makes an app that fails at startup stop uvicorn rather than serve 500s."""
    return lambda port: module(
        "uvicorn", f"{APPS}.{app}", "--host", HOST, "--port", str(port),
        "--lifespan", lifespan, "--log-level", "warning", "--no-access-log",
    )  # fmt: skip


def hypercorn(app: str) -> Callable[[int], list[str]]:
    return lambda port: module(
        "hypercorn", f"{APPS}.{app}", "--bind", f"{HOST}:{port}", "--log-level", "warning"
    )


def gunicorn(app: str) -> Callable[[int], list[str]]:
    return lambda port: module(
        "gunicorn", f"{APPS}.{app}", "--bind", f"{HOST}:{port}", "--workers", "1",
        "--worker-class", "gthread", "--threads", "16", "--log-level", "warning",
    )  # fmt: skip


def waitress(app: str) -> Callable[[int], list[str]]:
    return lambda port: module(
        "waitress", f"--listen={HOST}:{port}", "--threads=16", f"{APPS}.{app}"
    )


def aiohttp_web(factory: str) -> Callable[[int], list[str]]:
    return lambda port: module("aiohttp.web", "-H", HOST, "-P", str(port), f"{APPS}.{factory}")


FRAMEWORKS = [
    Framework("litestar", uvicorn("litestar_app:app"), websocket=True),
    Framework("quart", hypercorn("quart_app:app"), websocket=True),
    Framework("falcon-asgi", uvicorn("falcon_asgi_app:app"), websocket=True),
    Framework("falcon-wsgi", gunicorn("falcon_wsgi_app:app"), websocket=False),
    Framework("sanic", uvicorn("sanic_app:app"), websocket=True),
    Framework("bottle", waitress("bottle_app:app"), websocket=False),
    Framework("pyramid", gunicorn("pyramid_app:app"), websocket=False),
    Framework("aiohttp", aiohttp_web("aiohttp_app:init"), websocket=True),
    Framework(
        "django-channels",
        uvicorn("channels_project.asgi:application", lifespan="off"),  # Channels has none
        websocket=True,
        env={"DJANGO_SETTINGS_MODULE": f"{APPS}.channels_project.settings"},
    ),
    Framework("fastapi-mounted-app", uvicorn("fastapi_mounts:mounted"), True, prefix="/sub"),
    Framework("fastapi-router-stack", uvicorn("fastapi_mounts:router_stack"), True, "/api"),
]
