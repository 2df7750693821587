"""Settings of the Channels project that the framework tests serve."""

from __future__ import annotations

from typing import Any

SECRET_KEY = "ops-session-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "tests.live.frameworks.apps.channels_project.urls"
INSTALLED_APPS = ["channels"]
DATABASES: dict[str, Any] = {}
USE_TZ = True
ASGI_APPLICATION = "tests.live.frameworks.apps.channels_project.asgi.application"
MIDDLEWARE = ["ops_session.django.SessionMiddleware"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
