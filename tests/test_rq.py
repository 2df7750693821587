from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import redis
from rq.job import Job

from ops_session import SessionContext, current_session, session
from ops_session.rq import SESSION_META_KEY, SessionJob

CONNECTION = redis.Redis()  # never connected: creating and performing a job needs no server


def seen() -> SessionContext | None:
    return current_session()


def fail() -> None:
    raise KeyError("job failed")


class GeneratingJob(SessionJob):
    generate_session = True


def create(job_class: type[SessionJob] = SessionJob, **options: Any) -> Job:
    return job_class.create(seen, connection=CONNECTION, **options)


def test_create_stores_the_current_session_id_in_meta() -> None:
    with session(id="chat-42", attributes={"user": "ada"}):
        job = create()
        kept = create(meta={SESSION_META_KEY: "chosen", "other": 1})
    assert job.meta == {SESSION_META_KEY: "chat-42"}
    assert kept.meta == {SESSION_META_KEY: "chosen", "other": 1}
    assert create().meta == {}


def test_perform_runs_in_the_session_from_meta_then_restores() -> None:
    job = create(meta={SESSION_META_KEY: "chat-42"})
    with session(id="worker") as worker:
        result = job.perform()
        assert current_session() is worker
    assert isinstance(result, SessionContext) and result.id == "chat-42"
    assert result.attributes is None


def test_perform_without_a_session_hides_whatever_was_current() -> None:
    job = create()
    with session(id="left-over") as left_over:
        assert job.perform() is None
        assert current_session() is left_over


def test_synchronous_queue_keeps_the_enqueuing_session_whole() -> None:
    with session(id="caller", attributes={"user": "ada"}) as caller:
        assert create().perform() is caller


@pytest.mark.parametrize("value", ["<script>", "a b", "a" * 129, 42, ["chat-42"], b"chat-42"])
def test_perform_ignores_an_invalid_id(value: Any) -> None:
    assert create(meta={SESSION_META_KEY: value}).perform() is None


def test_generate_gives_jobs_without_a_session_a_new_one() -> None:
    first, second = create(GeneratingJob).perform(), create(GeneratingJob).perform()
    assert first is not None and second is not None and first.id != second.id
    assert create(GeneratingJob, meta={SESSION_META_KEY: "chat-42"}).perform().id == "chat-42"


def test_session_is_restored_when_the_job_raises() -> None:
    job = SessionJob.create(fail, connection=CONNECTION, meta={SESSION_META_KEY: "chat-42"})
    with pytest.raises(KeyError):
        job.perform()
    assert current_session() is None


def test_missing_rq_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rq.job", None)
    monkeypatch.delitem(sys.modules, "ops_session.rq")
    with pytest.raises(ImportError, match=r"install 'ops-session\[rq\]'"):
        import ops_session.rq  # noqa: F401


def test_meta_key_follows_the_process_header_name(
    process_header_name: Callable[[str | None], None],
) -> None:
    """Issue 27, point 7: enqueuing and performing services configured alike agree."""
    process_header_name("X-Conversation-Id")
    with session(id="named-1"):
        job = create()
    assert job.meta == {"X-Conversation-Id": "named-1"}
    assert job.perform().id == "named-1"
    assert create(meta={SESSION_META_KEY: "named-2"}).perform() is None


def test_enqueue_follows_the_carrier_rule(
    process_carriers: Callable[[Iterable[str] | None], None],
) -> None:
    """Issue 27, point 3: the job queue obeys the outgoing rule like every carrier."""
    process_carriers(["celery"])
    with session(id="ruled-1"):
        assert create().meta == {}


def test_a_bad_header_variable_neither_stores_nor_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "Bad Name")
    with session(id="bad-1"):
        assert create().meta == {}
    assert create(meta={SESSION_META_KEY: "bad-2"}).perform() is None
