"""Django's settings for the in-process tests: the live test project's, configured once."""

from __future__ import annotations

import django
from django.conf import settings

from ..live.apps.django_project import settings as project_settings


def configure_django() -> None:
    """Configure Django with the test project's settings, unless it already is."""
    if not settings.configured:
        settings.configure(
            **{name: value for name, value in vars(project_settings).items() if name.isupper()}
        )
        django.setup()
