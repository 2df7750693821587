"""The Django example's ASGI application.

Run from the repository root:

    .venv/bin/uvicorn examples.django_app.asgi:application --host 127.0.0.1 --port 5002
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from .telemetry import setup_telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
setup_telemetry("django_app")
application = get_asgi_application()
