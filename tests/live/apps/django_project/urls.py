"""The test project's routes."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("session", views.read_session),
    path("session-async", views.read_session_async),
    path("sleep", views.read_twice),
    path("sleep-async", views.read_twice_async),
    path("stream", views.stream),
    path("stream-async", views.stream_async),
    path("error", views.fail),
    path("error-async", views.fail_async),
    path("own-header", views.own_header),
    path("nested", views.nested),
    path("slow", views.slow),
    path("recorded", views.recorded),
    path("log", views.logged),
]
