"""arq: a job runs in the session that was current where it was enqueued.  [extra: arq]

arq has no hooks that see a job's arguments (arq#277), so the id travels as one reserved keyword
argument: `enqueue_job` adds it, and `continue_sessions` wraps a job function to take it back
off and run the function inside that session.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

try:
    from arq.connections import ArqRedis
    from arq.jobs import Job
except ImportError as error:
    raise ImportError("ops_session.arq needs arq: install 'ops-session[arq]'.") from error

from ._core import SessionContext, activate, current_session, deactivate, is_valid_session_id
from ._outgoing import may_carry_session, outgoing_header_name

__all__ = ["SESSION_KWARG", "continue_sessions", "enqueue_job", "session_kwarg"]

SESSION_KWARG = "mirascope_session_id"
"""The keyword argument that carries the session id from `enqueue_job` to `continue_sessions`,
for the default session header; `session_kwarg()` gives the one for the process's header."""

_Result = TypeVar("_Result")
_JobFunction = Callable[..., Awaitable[_Result]]


async def enqueue_job(redis: ArqRedis, function: str, *args: Any, **kwargs: Any) -> Job | None:
    """Enqueue a job as `ArqRedis.enqueue_job` does, carrying the current session's id.

    Inside a session the id is added as the `mirascope_session_id` keyword argument (see
    `session_kwarg`), which a function wrapped by `continue_sessions` takes back off. Outside a
    session, when the caller passes that argument itself, or when the outgoing rule leaves
    `arq` out of `OPS_SESSION_OUTGOING_CARRIERS`, the call is unchanged. arq's own options
    (`_job_id`, `_defer_by`, ...) pass through.

    Returns:
        What `ArqRedis.enqueue_job` returns: the `Job`, or `None` when its `_job_id` exists.

    Example:
        redis = await create_pool(RedisSettings())
        await enqueue_job(redis, "summarize", conversation_id)
    """
    current = current_session()
    if current is not None and may_carry_session("arq", None):
        name = session_kwarg()
        if name is not None:
            kwargs.setdefault(name, current.id)
    return await redis.enqueue_job(function, *args, **kwargs)


def session_kwarg() -> str | None:
    """The keyword argument that carries the id: the session header name as an identifier.

    `Mirascope-Session-Id` gives `mirascope_session_id` (`SESSION_KWARG`); a process whose
    `OPS_SESSION_HEADER_NAME` is `X-Conversation-Id` uses `x_conversation_id`, so that a
    service and its workers configured alike agree. `None` when that variable is invalid.
    """
    name = outgoing_header_name()
    return None if name is None else _identifier(name)


@functools.lru_cache(maxsize=16)
def _identifier(header_name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in header_name.lower())


@overload
def continue_sessions(function: _JobFunction[_Result]) -> _JobFunction[_Result]: ...


@overload
def continue_sessions(
    *, generate: bool = False
) -> Callable[[_JobFunction[_Result]], _JobFunction[_Result]]: ...


def continue_sessions(
    function: _JobFunction[_Result] | None = None, *, generate: bool = False
) -> _JobFunction[_Result] | Callable[[_JobFunction[_Result]], _JobFunction[_Result]]:
    """Run an arq job function inside the session its job was enqueued in.

    The wrapper takes the `mirascope_session_id` argument (`session_kwarg()`) that
    `enqueue_job` added off the keyword arguments, makes a valid id current while the function
    runs, and restores the previous session afterwards. Jobs without it run with no session,
    unless `generate=True` gives them a new one; an invalid id is ignored. arq retries a job
    with the arguments it was enqueued with, so a retry keeps the session. The wrapper keeps
    the function's name, which is how arq finds it.

    Example:
        @continue_sessions
        async def summarize(ctx: dict[str, Any], conversation_id: str) -> str: ...

        class WorkerSettings:
            functions = [summarize]
    """
    if function is None:
        return functools.partial(_wrap, generate=generate)
    return _wrap(function, generate=generate)


def _wrap(function: _JobFunction[_Result], *, generate: bool) -> _JobFunction[_Result]:
    @functools.wraps(function)
    async def run_in_session(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> _Result:
        name = session_kwarg()
        value = kwargs.pop(name, None) if name is not None else None
        # Job data is input: anything but a well-formed id is ignored and never logged.
        if isinstance(value, str) and is_valid_session_id(value):
            context: SessionContext | None = SessionContext(value)
        else:
            context = SessionContext() if generate else None
        token = activate(context)
        try:
            return await function(ctx, *args, **kwargs)
        finally:
            deactivate(token)

    return run_in_session
