"""Settings of the Django project that the tests run in-process and under gunicorn and uvicorn."""

from __future__ import annotations

from typing import Any

SECRET_KEY = "ops-session-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.live.apps.django_project.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, Any] = {}
USE_TZ = True
WSGI_APPLICATION = "tests.live.apps.django_project.wsgi.application"

PROBE = "tests.live.apps.django_project.middleware.SessionProbeMiddleware"
MIDDLEWARE = [PROBE, "ops_session.django.SessionMiddleware"]

OPS_SESSION: dict[str, Any] = {
    "attributes": "tests.live.apps.django_project.views.request_attributes",
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"session": {"()": "ops_session.logging.SessionLogFilter"}},
    "formatters": {"session": {"format": "session=%(session_id)s %(name)s: %(message)s"}},
    "handlers": {
        "recorded": {
            "class": "tests.live.apps.django_project.logs.RecordedLines",
            "filters": ["session"],
            "formatter": "session",
        }
    },
    "loggers": {
        "django.request": {"handlers": ["recorded"], "level": "ERROR", "propagate": False},
        "views": {"handlers": ["recorded"], "level": "INFO", "propagate": False},
    },
}
