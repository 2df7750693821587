"""The test project's ASGI application, for uvicorn."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.live.apps.django_project.settings")
application = get_asgi_application()
