"""The test project with a sync-only `MiddlewareMixin` middleware below the session middleware.

Under ASGI, Django runs such a middleware in a worker thread and the rest of the chain through
`sync_to_async`/`async_to_sync` hops, where a ContextVar token set in one hop cannot be reset in
another.
"""

from __future__ import annotations

from .settings import *  # noqa: F403
from .settings import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE, "tests.live.apps.django_project.middleware.SyncOnlyMiddleware"]
