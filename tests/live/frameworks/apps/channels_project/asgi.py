"""The Channels application: Django's ASGI app over HTTP, the consumers over websockets.

HTTP requests get their session from `ops_session.django.SessionMiddleware` in `MIDDLEWARE`;
websocket connections from the ASGI middleware around the websocket router, where
Channels stacks its own middleware (`AuthMiddlewareStack`).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE", "tests.live.frameworks.apps.channels_project.settings"
)
django_app = get_asgi_application()  # sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from ops_session import SessionMiddleware  # noqa: E402

from .consumers import EchoConsumer, RoomConsumer, SyncEchoConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": SessionMiddleware(
            URLRouter(
                [
                    path("ws", EchoConsumer.as_asgi()),
                    path("ws-sync", SyncEchoConsumer.as_asgi()),
                    path("room", RoomConsumer.as_asgi()),
                ]
            )
        ),
    }
)
