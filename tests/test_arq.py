from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.jobs import Job

from ops_session import SessionContext, current_session, session
from ops_session.arq import SESSION_KWARG, continue_sessions, enqueue_job, session_kwarg


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


def test_the_argument_follows_the_process_header_name(
    process_header_name: Callable[[str | None], None],
) -> None:
    """Issue 27, point 7: enqueuing and working services configured alike agree."""
    process_header_name("X-Conversation-Id")
    assert session_kwarg() == "x_conversation_id"
    redis = recording()

    async def send_and_run() -> tuple[Any, Any]:
        with session(id="named-1"):
            await enqueue_job(redis, "summarize")
        _, _, kwargs = redis.calls[0]
        return await seen({}, **kwargs), await seen({}, **{SESSION_KWARG: "named-2"})

    (context, _, kwargs), (other, _, other_kwargs) = asyncio.run(send_and_run())
    assert redis.calls == [("summarize", (), {"x_conversation_id": "named-1"})]
    assert context.id == "named-1" and kwargs == {}
    assert other is None and other_kwargs == {SESSION_KWARG: "named-2"}


def test_enqueue_follows_the_carrier_rule(
    process_carriers: Callable[[Iterable[str] | None], None],
) -> None:
    """Issue 27, point 3: the job queue obeys the outgoing rule like every carrier."""
    process_carriers(["celery"])
    redis = recording()

    async def send() -> None:
        with session(id="ruled-1"):
            await enqueue_job(redis, "summarize")

    asyncio.run(send())
    assert redis.calls == [("summarize", (), {})]


def test_a_bad_header_variable_neither_adds_nor_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
    assert session_kwarg() is None
    redis = recording()

    async def send_and_run() -> Any:
        with session(id="bad-1"):
            await enqueue_job(redis, "summarize")
        return await seen({})

    context, _, _ = asyncio.run(send_and_run())
    assert redis.calls == [("summarize", (), {})] and context is None
