"""A Django project with no ops-session in it: `opentelemetry-instrument` adds the middleware."""

from __future__ import annotations

SECRET_KEY = "zero-code-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.live.apps.zero_code_django.urls"
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
