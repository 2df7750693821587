"""Celery: a task runs in the session that was current where it was published.  [extra: celery]

`propagate_sessions(app)` connects three of Celery's signals. `before_task_publish` writes the
current session's id into the message headers; `task_prerun` makes it current in the worker;
`task_postrun` restores whatever was current before. Call it once where the app is defined, so
that both the publishing process and the worker run it.
"""

from __future__ import annotations

import weakref
from collections.abc import MutableMapping
from typing import Any

try:
    from celery import Celery, Task
    from celery.signals import before_task_publish, task_postrun, task_prerun
except ImportError as error:
    raise ImportError("ops_session.celery needs Celery: install 'ops-session[celery]'.") from error

from ._core import (
    SessionContext,
    activate,
    current_session,
    deactivate,
    is_valid_session_id,
)
from ._outgoing import may_carry_session, outgoing_header_name

__all__ = ["propagate_sessions"]

# The apps `propagate_sessions` was called for, and each one's `generate` setting. Weak, so that
# an app dropped by its owner (a test, a reloaded module) is not kept alive by this module.
_apps: weakref.WeakKeyDictionary[Celery, bool] = weakref.WeakKeyDictionary()
# Those of them set up by `opentelemetry-instrument`, whose setting the app's own call replaces.
_automatic: weakref.WeakSet[Celery] = weakref.WeakSet()

# Where `task_prerun` leaves its token for `task_postrun`: on the execution's own request
# (`task.request`, pushed for each execution on a thread- or greenlet-local stack). A task id
# alone is too coarse: a threads pool may run two executions of one id at once, and an eager
# retry runs nested inside the call it retries, under the same id.
_TOKEN_ATTRIBUTE = "_ops_session_token"


def propagate_sessions(app: Celery, *, generate: bool = False) -> None:
    """Carry the current session from where a task is published into the worker that runs it.

    Publishing inside a session (a web request behind `SessionMiddleware`, a `session()` block,
    a task that is itself running in one) writes the id into the message's session header
    (`Mirascope-Session-Id` unless `set_session_header_name` or `OPS_SESSION_HEADER_NAME` name
    another), unless the outgoing rule leaves `celery` out of `OPS_SESSION_OUTGOING_CARRIERS`.
    The worker continues that id for the task's duration, so the task's log lines, spans and
    own published tasks carry it; afterwards the worker's previous session (normally none) is
    current again. Retries, chains, groups and chords keep the
    session, because each of their messages is published while it is current.

    A task published outside any session runs with `current_session() is None`, unless
    `generate=True` gives it a session of its own. An invalid id in a message is ignored. In
    eager mode (`task_always_eager`, `Task.apply`) the task runs in the caller's session and
    leaves it in place.

    Only the id travels, never the session's attributes. Calling this again for the same app
    does nothing. Call it before `CeleryInstrumentor().instrument()`, so that the task's span
    starts inside the session and `SessionSpanProcessor` stamps it.

    Args:
        app: The Celery app whose tasks continue sessions in the worker.
        generate: Give tasks that arrive without a session a new one.

    Raises:
        TypeError: `app` is not a Celery app.
        ValueError: It was already called for `app` with a different `generate` (a call made
            by `opentelemetry-instrument` is replaced instead).

    Example:
        app = Celery("chat", broker="redis://127.0.0.1:6379/0")
        propagate_sessions(app)
    """
    if not isinstance(app, Celery):
        raise TypeError(
            f"propagate_sessions() needs the Celery app, got {type(app).__name__} {app!r}: "
            "pass the object made by Celery(...)."
        )
    if not isinstance(generate, bool):
        raise TypeError(f"propagate_sessions() takes generate=True or False, got {generate!r}.")
    if app in _automatic:
        _automatic.discard(app)  # the app's own call wins over opentelemetry-instrument's
        _apps[app] = generate
        return
    if app in _apps:
        if _apps[app] != generate:
            raise ValueError(
                f"propagate_sessions() was already called for {app!r} with "
                f"generate={_apps[app]}; call it once per app, with one setting."
            )
        return
    _apps[app] = generate
    # One receiver of each signal serves every app; a dispatch_uid makes connecting idempotent.
    before_task_publish.connect(_stamp_message, weak=False, dispatch_uid=__name__)
    task_prerun.connect(_continue_session, weak=False, dispatch_uid=__name__)
    task_postrun.connect(_restore_session, weak=False, dispatch_uid=__name__)


def propagate_sessions_automatically(app: Celery) -> None:
    """`propagate_sessions(app)` for `opentelemetry-instrument`: the app's own call replaces it."""
    if app not in _apps:
        propagate_sessions(app)
        _automatic.add(app)


def _stamp_message(headers: MutableMapping[str, Any] | None = None, **kwargs: Any) -> None:
    """`before_task_publish`: write the current session's id into the message headers.

    The signal does not say which app publishes, so this stamps every message sent while a
    session is current and the outgoing rule lets `celery` carriers take it; a worker without
    `propagate_sessions` ignores the header, named by `session_header_name()`. An id already
    there is kept, as `inject_session` does. Some Celery versions moved custom headers
    into a nested `headers` mapping on retry (celery#7523, fixed by #7555), so that one gets it
    too when present. Retries are published while the task's session is current, so they are
    stamped afresh whatever the Celery version does with the first message's headers.
    """
    current = current_session()
    if current is None or headers is None or not may_carry_session("celery", None):
        return
    name = outgoing_header_name()
    if name is None:
        return
    headers.setdefault(name, current.id)
    nested = headers.get("headers")
    if isinstance(nested, dict):
        nested.setdefault(name, current.id)


def _continue_session(
    sender: Task[Any, Any] | None = None, task_id: str = "", **kwargs: Any
) -> None:
    """`task_prerun`: make the message's session current for the task."""
    generate = _apps.get(sender.app) if sender is not None else None
    if generate is None:
        return  # not a task of an app that propagates sessions
    request = sender.request  # type: ignore[union-attr]  # generate is None when sender is
    incoming = _incoming_id(request)
    context: SessionContext | None
    if request.is_eager:
        # Eager: the task runs in the caller's context, whose session stays as it is.
        current = current_session()
        if incoming is None:
            if current is not None or not generate:
                return
            context = SessionContext()
        elif current is not None and current.id == incoming:
            return  # called inside the very session it carries: keep it whole
        else:
            context = SessionContext(incoming)
    elif incoming is not None:
        context = SessionContext(incoming)
    else:
        # A worker owes this task no session but a new one when asked; None also hides anything
        # an earlier task or a library left current in this process.
        context = SessionContext() if generate else None
    setattr(request, _TOKEN_ATTRIBUTE, activate(context))


def _restore_session(sender: Task[Any, Any] | None = None, **kwargs: Any) -> None:
    """`task_postrun`: make current again what was current before the task's prerun."""
    request = getattr(sender, "request", None)
    token = getattr(request, _TOKEN_ATTRIBUTE, None)
    if token is None:
        return  # prerun made nothing current for this execution
    delattr(request, _TOKEN_ATTRIBUTE)
    deactivate(token)


def _incoming_id(request: Any) -> str | None:
    """The valid session id a task's message carries, from its headers or nested headers."""
    name = outgoing_header_name()
    if name is None:
        return None
    value = request.get(name)
    if value is None:
        nested = getattr(request, "headers", None)
        if isinstance(nested, dict):
            value = nested.get(name)
    # Broker messages are input: anything but a well-formed id is ignored and never logged.
    return value if isinstance(value, str) and is_valid_session_id(value) else None
