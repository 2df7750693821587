"""Settings of the Django example: the session middleware first, the session log filter in LOGGING.

Log lines go to $LOG_FILE (standard error when unset), each stamped with the session.
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "ops-session-example-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "examples.django_app.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, Any] = {}
USE_TZ = True
TIME_ZONE = "UTC"  # Django sets the process time zone from it: log times match the others

MIDDLEWARE = [
    "ops_session.django.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
]

OPS_SESSION = {"attributes": {"app": "chat-demo"}}

_LOG_FILE = os.environ.get("LOG_FILE")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"session": {"()": "ops_session.logging.SessionLogFilter"}},
    "formatters": {
        "session": {"format": "%(asctime)s django_app session=%(session_id)s %(name)s: %(message)s"}
    },
    "handlers": {
        "session": {
            **(
                {"class": "logging.FileHandler", "filename": _LOG_FILE, "encoding": "utf-8"}
                if _LOG_FILE
                else {"class": "logging.StreamHandler"}
            ),
            "filters": ["session"],
            "formatter": "session",
        }
    },
    "root": {"level": "INFO", "handlers": ["session"]},
}
