"""The test project in reject mode: an invalid incoming id gets a 400."""

from __future__ import annotations

from .settings import *  # noqa: F403

OPS_SESSION = {"on_invalid": "reject"}
