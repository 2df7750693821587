"""The Django example's routes."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [path("session", views.read_session)]
