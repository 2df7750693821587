from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.jobs import Job

from ops_session import SessionContext, current_session, session
from ops_session.arq import SESSION_KWARG, continue_sessions, enqueue_job


class RecordingRedis(ArqRedis):
    """Records what would be enqueued; the live tests enqueue on a real Redis."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]

    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Job | None:
        self.calls.append((function, args, kwargs))
        return None


def recording() -> RecordingRedis:
    redis = RecordingRedis()
    redis.calls = []
    return redis


@continue_sessions
async def seen(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Report the session, and the arguments the function received."""
    await asyncio.sleep(0)
    return current_session(), args, kwargs


@continue_sessions(generate=True)
async def seen_or_new(ctx: dict[str, Any]) -> SessionContext | None:
    return current_session()


@continue_sessions
async def fail(ctx: dict[str, Any]) -> None:
    raise KeyError("job failed")


def test_enqueue_job_adds_the_current_session_id() -> None:
    redis = recording()

    async def send() -> None:
        with session(id="chat-42", attributes={"user": "ada"}):
            await enqueue_job(redis, "summarize", 1, _job_id="j1", n=2)
            await enqueue_job(redis, "summarize", **{SESSION_KWARG: "chosen"})
        await enqueue_job(redis, "summarize", 3)

    asyncio.run(send())
    assert redis.calls == [
        ("summarize", (1,), {"_job_id": "j1", "n": 2, SESSION_KWARG: "chat-42"}),
        ("summarize", (), {SESSION_KWARG: "chosen"}),
        ("summarize", (3,), {}),
    ]


def test_wrapped_function_runs_in_the_session_and_never_sees_the_argument() -> None:
    async def run() -> Any:
        with session(id="worker") as worker:
            result = await seen({}, 1, n=2, **{SESSION_KWARG: "chat-42"})
            assert current_session() is worker
        return result

    context, args, kwargs = asyncio.run(run())
    assert context.id == "chat-42"
    assert (args, kwargs) == ((1,), {"n": 2})


@pytest.mark.parametrize("value", [None, "<script>", "a b", "a" * 129, 42, ["chat-42"]])
def test_missing_or_invalid_id_runs_without_a_session(value: Any) -> None:
    async def run() -> Any:
        with session(id="left-over") as left_over:
            context, _, kwargs = await seen({}, **{SESSION_KWARG: value})
            assert current_session() is left_over
        return context, kwargs

    assert asyncio.run(run()) == (None, {})


def test_generate_gives_jobs_without_a_session_a_new_one() -> None:
    async def run() -> list[SessionContext | None]:
        return [
            await seen_or_new({}),
            await seen_or_new({}),
            await seen_or_new({}, **{SESSION_KWARG: "chat-42"}),
        ]

    first, second, kept = asyncio.run(run())
    assert first is not None and second is not None and first.id != second.id
    assert kept is not None and kept.id == "chat-42"


def test_session_is_restored_when_the_job_raises() -> None:
    async def run() -> None:
        with pytest.raises(KeyError):
            await fail({}, **{SESSION_KWARG: "chat-42"})
        assert current_session() is None

    asyncio.run(run())


def test_wrapper_keeps_the_name_arq_finds_the_function_by() -> None:
    assert seen.__qualname__ == "seen"
    assert inspect.iscoroutinefunction(seen)


def test_missing_arq_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "arq.connections", None)
    monkeypatch.delitem(sys.modules, "ops_session.arq")
    with pytest.raises(ImportError, match=r"install 'ops-session\[arq\]'"):
        import ops_session.arq  # noqa: F401
