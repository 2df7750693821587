from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ops_session import (
    SESSION_HEADER_NAME,
    SessionContext,
    current_session,
    extract_session_id,
    generate_session_id,
    inject_session,
    is_valid_session_id,
    require_session,
    session,
)


def test_session_is_current_inside_the_block_only() -> None:
    with session(id="chat-1", attributes={"user": "ada"}) as context:
        assert current_session() is context
        assert context.id == "chat-1"
        assert context.attributes == {"user": "ada"}
    assert current_session() is None


def test_session_without_id_generates_a_uuid4() -> None:
    with session() as first, session() as second:
        assert uuid.UUID(first.id).version == 4
        assert str(uuid.UUID(first.id)) == first.id
        assert first.id != second.id


def test_generated_ids_are_canonical_random_uuid4_strings() -> None:
    ids = [generate_session_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for generated in ids:
        parsed = uuid.UUID(generated)
        assert str(parsed) == generated
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # Every variant digit occurs, and every hex digit occurs in every random position.
    assert {generated[19] for generated in ids} == set("89ab")
    for position in (0, 9, 15, 20, 24, 35):
        assert {generated[position] for generated in ids} == set("0123456789abcdef")


def test_session_context_defaults() -> None:
    context = SessionContext()
    assert uuid.UUID(context.id).version == 4
    assert context.attributes is None
    assert SessionContext(id="a") == SessionContext(id="a")
    assert hash(SessionContext(id="a", attributes={"x": 1})) == hash(SessionContext(id="a"))


def test_nested_session_overrides_and_restores_outer() -> None:
    with session(id="outer") as outer:
        with session(id="inner"):
            assert current_session() is not None
            assert current_session().id == "inner"  # type: ignore[union-attr]
        assert current_session() is outer


def test_outer_session_restored_when_exception_passes() -> None:
    with session(id="outer") as outer:
        with pytest.raises(KeyError), session(id="inner"):
            raise KeyError("boom")
        assert current_session() is outer
    assert current_session() is None


def test_asyncio_tasks_do_not_see_each_others_session() -> None:
    async def worker(name: str, seen: dict[str, list[str | None]]) -> None:
        with session(id=name):
            await asyncio.sleep(0)
            first = current_session()
            await asyncio.sleep(0.01)
            second = current_session()
            seen[name] = [first.id if first else None, second.id if second else None]

    async def main() -> dict[str, list[str | None]]:
        seen: dict[str, list[str | None]] = {}
        await asyncio.gather(*(worker(f"task-{n}", seen) for n in range(50)))
        assert current_session() is None
        return seen

    seen = asyncio.run(main())
    assert seen == {f"task-{n}": [f"task-{n}", f"task-{n}"] for n in range(50)}


def test_task_started_inside_a_session_inherits_it() -> None:
    async def main() -> str | None:
        with session(id="parent"):
            task = asyncio.create_task(asyncio.sleep(0, result=None))
            child = asyncio.create_task(_current_id())
        await task
        return await child

    async def _current_id() -> str | None:
        context = current_session()
        return context.id if context else None

    assert asyncio.run(main()) == "parent"


def test_plain_threads_do_not_see_the_session() -> None:
    seen: list[object] = []
    with session(id="main-thread"):
        thread = threading.Thread(target=lambda: seen.append(current_session()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_executor_with_copied_context_sees_the_session() -> None:
    with session(id="copied"), ThreadPoolExecutor(max_workers=2) as pool:
        context = contextvars.copy_context()
        future = pool.submit(context.run, current_session)
        plain = pool.submit(current_session)
        assert future.result() is not None
        assert future.result().id == "copied"  # type: ignore[union-attr]
        assert plain.result() is None


def test_threads_each_keep_their_own_session() -> None:
    barrier = threading.Barrier(8)
    results: dict[int, tuple[str, str]] = {}

    def worker(number: int) -> None:
        with session(id=f"thread-{number}"):
            before = current_session()
            barrier.wait()
            after = current_session()
            assert before is not None and after is not None
            results[number] = (before.id, after.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: (f"thread-{n}", f"thread-{n}") for n in range(8)}


@pytest.mark.parametrize(
    ("bad_id", "error"),
    [
        pytest.param(123, TypeError, id="int"),
        pytest.param(b"abc", TypeError, id="bytes"),
        pytest.param(uuid.uuid4(), TypeError, id="uuid-object"),
        pytest.param("", ValueError, id="empty"),
    ],
)
def test_session_rejects_a_bad_id_with_advice(bad_id: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="session id must be a"):
        session(id=bad_id)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        pytest.param({"when": object()}, r"attributes\['when'\]", id="object"),
        pytest.param({"tags": ["ok", {1, 2}]}, r"attributes\['tags'\]\[1\]", id="set-in-list"),
        pytest.param({"nested": {"raw": b"x"}}, r"attributes\['nested'\]\['raw'\]", id="bytes"),
        pytest.param({1: "x"}, r"keys must be str, got 1", id="int-key"),
        pytest.param({"deep": {2: "x"}}, r"attributes\['deep'\] keys must be str", id="deep-key"),
        pytest.param(["not", "a", "mapping"], r"must be a mapping", id="list"),
    ],
)
def test_session_rejects_non_json_attributes_naming_the_key(attributes: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        session(attributes=attributes)


def test_attributes_are_a_read_only_copy() -> None:
    source: dict[str, Any] = {"user": "ada", "tags": ["a", "b"], "meta": {"plan": "pro"}}
    with session(attributes=source) as context:
        source["user"] = "mallory"
        source["tags"].append("c")
        source["meta"]["plan"] = "free"
        attributes = context.attributes
        assert attributes is not None
        assert attributes == {"user": "ada", "tags": ["a", "b"], "meta": {"plan": "pro"}}
        with pytest.raises(TypeError):
            attributes["user"] = "mallory"  # type: ignore[index]
        with pytest.raises(TypeError):
            attributes["meta"]["plan"] = "free"  # type: ignore[call-overload,index]
        with pytest.raises(TypeError, match="read-only"):
            attributes["tags"].append("c")  # type: ignore[union-attr]
        with pytest.raises(AttributeError):
            context.id = "other"  # type: ignore[misc]


def test_attributes_still_serialize_to_json() -> None:
    context = SessionContext(attributes={"n": 1, "f": 0.5, "ok": True, "none": None, "l": [1]})
    assert context.attributes is not None
    assert json.loads(json.dumps(dict(context.attributes), default=list)) == {
        "n": 1,
        "f": 0.5,
        "ok": True,
        "none": None,
        "l": [1],
    }


def test_session_block_cannot_be_entered_twice() -> None:
    block = session(id="once")
    with block, pytest.raises(RuntimeError, match="already active"), block:
        pass  # pragma: no cover


def test_session_block_exited_without_enter() -> None:
    with pytest.raises(RuntimeError, match="without being entered"):
        session().__exit__(None, None, None)


def test_session_used_as_decorator_says_how_to_use_it() -> None:
    with pytest.raises(TypeError, match="not a decorator"):

        @session(id="x")  # type: ignore[misc]
        async def handler() -> None:  # pragma: no cover
            pass


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Mirascope-Session-Id": "abc"}, "abc", id="canonical"),
        pytest.param({"mirascope-session-id": "abc"}, "abc", id="lower"),
        pytest.param({"MIRASCOPE-SESSION-ID": "abc"}, "abc", id="upper"),
        pytest.param({"mIrAsCoPe-SeSsIoN-iD": "abc"}, "abc", id="odd-case"),
        pytest.param({"mirascope-session-id": ["first", "second"]}, "first", id="list"),
        pytest.param({"mirascope-session-id": []}, None, id="empty-list"),
        pytest.param({"mirascope-session-id": [""]}, None, id="list-of-empty"),
        pytest.param({"Mirascope-Session-Id": ""}, None, id="empty"),
        pytest.param({"X-Request-Id": "abc"}, None, id="other-header"),
        pytest.param({}, None, id="none"),
        pytest.param({"Mirascope-Session-Id": "<script>"}, "<script>", id="returned-as-sent"),
    ],
)
def test_extract_session_id(headers: Mapping[str, str | list[str]], expected: str | None) -> None:
    assert extract_session_id(headers) == expected


def test_extract_session_id_reads_case_insensitive_mappings() -> None:
    from starlette.datastructures import Headers

    headers = Headers(raw=[(b"mirascope-session-id", b"from-starlette")])
    assert extract_session_id(headers) == "from-starlette"
    assert extract_session_id({"X-Trace": "t"}, header_name="x-trace") == "t"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param(str(uuid.uuid4()), True, id="uuid4"),
        pytest.param("0" * 32, True, id="nginx-request-id"),
        pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAV", True, id="ulid"),
        pytest.param("user@example.com:chat/42~v2+a=b_c.d", True, id="every-punctuation"),
        pytest.param("a" * 128, True, id="128-chars"),
        pytest.param("a" * 129, False, id="129-chars"),
        pytest.param("a" * 8000, False, id="8000-chars"),
        pytest.param("", False, id="empty"),
        pytest.param("a b", False, id="space"),
        pytest.param("a,b", False, id="comma"),
        pytest.param("<script>", False, id="script"),
        pytest.param("abc\r\nSet-Cookie: x=1", False, id="crlf"),
        pytest.param("abc\n", False, id="trailing-newline"),
        pytest.param("abc\x00", False, id="nul"),
        pytest.param("caf\u00e9", False, id="non-ascii"),
        pytest.param("\u0661\u0662", False, id="unicode-digits"),
    ],
)
def test_is_valid_session_id(value: str, valid: bool) -> None:
    assert is_valid_session_id(value) is valid


def test_inject_session_writes_the_current_id() -> None:
    assert inject_session({}) == {}
    with session(id="chat-9"):
        headers: dict[str, str] = {"Accept": "application/json"}
        assert inject_session(headers) is headers
        assert headers == {"Accept": "application/json", SESSION_HEADER_NAME: "chat-9"}


def test_inject_session_keeps_a_header_already_set() -> None:
    with session(id="chat-9"):
        assert inject_session({"mirascope-session-id": "forwarded"}) == {
            "mirascope-session-id": "forwarded"
        }


def test_require_session_returns_the_current_session() -> None:
    with session(id="chat-42") as current:
        assert require_session() is current


def test_require_session_outside_a_session_says_how_to_open_one() -> None:
    with pytest.raises(LookupError, match=r"No session is current: .* `with session\(\):`"):
        require_session()
