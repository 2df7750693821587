"""Zero-code sessions: the instrumentor `opentelemetry-instrument` loads.  [extra: otel]

Registered under the `opentelemetry_instrumentor` entry point, so that running an app under
`opentelemetry-instrument` (or the Kubernetes operator) with ops-session installed gives it
sessions without a line of code: every Starlette/FastAPI and Flask app gets `install()`, Django
gets the `MIDDLEWARE` entry, Celery apps and RQ queues carry sessions into jobs, httpx and
requests clients send the header (within `OPS_SESSION_OUTGOING_HOSTS`), the tracer provider the
distro configured gets `SessionSpanProcessor`, and log records get `session_id`. Options come
from `OPS_SESSION_*` variables; `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ops_session` turns it off.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import suppress
from typing import Any

try:
    from opentelemetry import trace
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,  # not in its __all__
    )
    from opentelemetry.sdk.trace import TracerProvider
except ImportError as error:
    raise ImportError(
        "ops_session.instrumentation needs OpenTelemetry's instrumentation package: "
        "install 'ops-session[otel]'."
    ) from error

from ._environ import middleware_options
from ._install import install_automatically
from .logging import install_record_factory, uninstall_record_factory
from .otel import SessionSpanProcessor

__all__ = ["DJANGO_MIDDLEWARE", "SessionInstrumentor"]

DJANGO_MIDDLEWARE = "ops_session.django.SessionMiddleware"
"""The `MIDDLEWARE` entry added first to every Django project."""

logger = logging.getLogger(__name__)

_Patch = tuple[object, str, object]


class SessionInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Turn sessions on for everything a process runs, from environment variables alone.

    Each part applies only when its library can be imported; none is a dependency. Apps that add
    ops-session themselves (`install`, `add_middleware`, a wrapped `wsgi_app`, Django's
    `MIDDLEWARE`, `propagate_sessions`, `send_session`) keep their own setup, once.

    A bad `OPS_SESSION_*` variable stops the process with `SystemExit` naming it:
    `opentelemetry-instrument` logs and swallows any other exception, and the app would then run
    without sessions.

    Example:
        OTEL_PROPAGATORS=tracecontext,baggage,ops_session opentelemetry-instrument uvicorn app:app
    """

    _patches: list[_Patch] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        try:
            options = middleware_options(os.environ)
            _check_outgoing_hosts()
        except ValueError as error:
            raise SystemExit(f"ops-session: {error}") from None
        self._patches = []
        for patch_part in (_frameworks, _clients, _queues):
            self._patches.extend(patch_part(options))
        _add_span_processor(kwargs.get("tracer_provider") or trace.get_tracer_provider())
        install_record_factory()

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches = []
        with suppress(RuntimeError):  # another factory sits on ours: leave both in place
            uninstall_record_factory()


def _check_outgoing_hosts() -> None:
    from ._rules import outgoing_carriers, outgoing_hosts

    outgoing_hosts()
    outgoing_carriers()


def _add_span_processor(provider: object) -> None:
    if not isinstance(provider, TracerProvider):
        logger.debug("No SDK tracer provider is set: spans are not stamped with the session.")
        return
    processors = getattr(provider._active_span_processor, "_span_processors", ())
    if not any(isinstance(processor, SessionSpanProcessor) for processor in processors):
        provider.add_span_processor(SessionSpanProcessor())


def _importable(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def _after_init(owner: type[Any], then: Callable[[Any], object]) -> _Patch:
    """Make `owner.__init__` call `then(instance)` once it returned; the undo triple."""
    original = owner.__dict__["__init__"]

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        then(self)

    owner.__init__ = __init__
    return (owner, "__init__", original)


def _frameworks(options: dict[str, Any]) -> Iterator[_Patch]:
    def install_app(app: Any) -> None:
        install_automatically(app, **options)

    for module_name, class_name in (
        ("starlette.applications", "Starlette"),
        ("fastapi.applications", "FastAPI"),  # does not call Starlette.__init__
        ("flask.app", "Flask"),
    ):
        module = _importable(module_name)
        if module is not None:
            yield _after_init(getattr(module, class_name), install_app)
    base = _importable("django.core.handlers.base")
    if base is not None:
        _importable("ops_session.django")  # registers its system check of OPS_SESSION
        yield _django_middleware_first(base.BaseHandler, options)


def _django_middleware_first(handler: type[Any], options: dict[str, Any]) -> _Patch:
    original = handler.__dict__["load_middleware"]

    @functools.wraps(original)
    def load_middleware(self: Any, *args: Any, **kwargs: Any) -> Any:
        from django.conf import settings

        middleware = list(settings.MIDDLEWARE)
        if DJANGO_MIDDLEWARE not in middleware:
            settings.MIDDLEWARE = [DJANGO_MIDDLEWARE, *middleware]
        if options and not hasattr(settings, "OPS_SESSION"):
            settings.OPS_SESSION = dict(options)
        return original(self, *args, **kwargs)

    handler.load_middleware = load_middleware
    return (handler, "load_middleware", original)


def _clients(options: dict[str, Any]) -> Iterator[_Patch]:
    httpx = _importable("httpx")
    if httpx is not None:
        yield _after_init(httpx.Client, _send_unless_hooked)
        yield _after_init(httpx.AsyncClient, _send_unless_hooked)
    requests = _importable("requests")
    if requests is not None:
        from .requests import send_session as send_requests

        yield _after_init(requests.Session, send_requests)


def _send_unless_hooked(client: Any) -> None:
    """Hook an httpx client for the process rule, unless it was built with a session hook.

    `event_hooks={"request": [SessionHeaderHook(hosts=[...])]}` is the client's own, explicit
    rule: the process-wide one must not replace it (issue 27).
    """
    from ._httpx_hooks import HostsHook
    from .httpx import send_session

    if not any(isinstance(hook, HostsHook) for hook in client.event_hooks["request"]):
        send_session(client)


def _queues(options: dict[str, Any]) -> Iterator[_Patch]:
    celery = _importable("celery.app.base")
    if celery is not None:
        from .celery import propagate_sessions_automatically

        # Automatic: a later propagate_sessions(app, generate=...) of the app's own replaces it.
        yield _after_init(celery.Celery, propagate_sessions_automatically)
    # `rq.worker` is a module in rq 2 and a package in rq 3: both export BaseWorker.
    queue, worker = _importable("rq.queue"), _importable("rq.worker")
    if queue is not None and worker is not None:
        from .rq import SessionJob

        for owner in (queue.Queue, worker.BaseWorker):
            yield (owner, "job_class", owner.__dict__["job_class"])
            owner.job_class = SessionJob
