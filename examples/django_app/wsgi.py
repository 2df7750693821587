"""The Django example's WSGI application.

Run from the repository root:

    .venv/bin/gunicorn examples.django_app.wsgi:application --bind 127.0.0.1:5002
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from .telemetry import setup_telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
setup_telemetry("django_app")
application = get_wsgi_application()
