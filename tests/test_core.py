from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

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
from ops_session._core import (
    add_request_listener,
    note_session,
    notify_request_started,
    remove_request_listener,
    request_listeners,
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


def test_threads_never_share_a_generated_id() -> None:
    def make_ids(_: int) -> list[str]:
        return [generate_session_id() for _ in range(3000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [session_id for batch in pool.map(make_ids, range(8)) for session_id in batch]
    assert len(set(ids)) == len(ids) == 24_000


def test_a_forked_child_makes_ids_of_its_own() -> None:
    generate_session_id()  # the parent holds a batch of ready ids now
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which coverage does not follow
        os.close(reader)
        os.write(writer, " ".join(generate_session_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child_ids = set(pipe.read().decode().split())
    os.waitpid(child, 0)
    parent_ids = {generate_session_id() for _ in range(10)}
    assert len(child_ids) == 10
    assert not child_ids & parent_ids


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


def test_session_block_cannot_be_entered_twice() -> None:
    block = session(id="once")
    with block, pytest.raises(RuntimeError, match="already active"), block:
        pass  # pragma: no cover


def test_session_block_exited_without_enter() -> None:
    with pytest.raises(RuntimeError, match="without being entered"):
        session().__exit__(None, None, None)


def test_session_used_as_decorator_says_how_to_use_it() -> None:
    with pytest.raises(TypeError, match="not a decorator"):
        # A context manager to the type checker: the cast is the misuse under test.
        decorator = cast("Callable[[object], object]", session(id="x"))

        @decorator
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
        pytest.param("user@example.com:chat-42~v2+a=b_c.d", True, id="every-punctuation"),
        pytest.param("a1B2-c3D4_e5F6", True, id="base64url"),
        pytest.param("...x", True, id="leading-dots-then-more"),
        pytest.param("nullable", True, id="longer-than-a-placeholder"),
        pytest.param("xnull", True, id="ends-like-a-placeholder"),
        # A client with nothing stored sends a placeholder: all such clients would share one.
        *(
            pytest.param(placeholder, False, id=f"placeholder-{placeholder}")
            for placeholder in ("null", "undefined", "None", "NULL", "nil", "NaN", "true", "false")
        ),
        # No id is a path.
        pytest.param("../../x", False, id="traversal"),
        pytest.param("..", False, id="dot-dot"),
        pytest.param(".", False, id="dot"),
        pytest.param("/etc/passwd", False, id="absolute-path"),
        pytest.param("chat/42", False, id="slash"),
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


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("abc\r\nSet-Cookie: x=1", id="crlf"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("a b", id="space"),
        pytest.param("a" * 1025, id="1025-chars"),
        pytest.param("abc\x00", id="nul"),
    ],
)
def test_session_refuses_ids_no_header_or_log_line_can_carry(bad_id: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        session(id=bad_id)


def test_every_id_session_accepts_can_be_sent() -> None:
    with session(id="~" * 1024):
        assert inject_session({}) == {SESSION_HEADER_NAME: "~" * 1024}


def test_bare_decorator_and_positional_id_say_how_to_call_it() -> None:
    with pytest.raises(TypeError, match="not a decorator"):

        @session  # type: ignore[arg-type]
        def handler() -> None:  # pragma: no cover
            pass

    with pytest.raises(TypeError, match="keyword arguments only"):
        session("chat-42")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({"mirascope-session-id": b"abc"}, "must be a str", id="bytes-value"),
        pytest.param({"mirascope-session-id": [b"abc"]}, "must be a str", id="bytes-in-list"),
        pytest.param({b"mirascope-session-id": "abc"}, "names must be str", id="bytes-name"),
    ],
)
def test_extract_session_id_refuses_bytes(headers: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        extract_session_id(headers)


def test_is_valid_session_id_refuses_bytes() -> None:
    with pytest.raises(TypeError, match="decode bytes"):
        is_valid_session_id(b"abc")  # type: ignore[arg-type]


def test_request_listeners_are_added_once_and_removed() -> None:
    seen: list[str] = []

    def listener(context: SessionContext) -> None:
        seen.append(context.id)

    add_request_listener(listener)
    add_request_listener(listener)
    try:
        assert [reference() for reference in request_listeners].count(listener) == 1
        notify_request_started(SessionContext(id="listened-1"))
    finally:
        remove_request_listener(listener)
    remove_request_listener(listener)  # unknown listeners are ignored
    notify_request_started(SessionContext(id="unheard-1"))
    assert seen == ["listened-1"]


def test_require_session_returns_the_current_session() -> None:
    with session(id="chat-42") as current:
        assert require_session() is current


def test_require_session_outside_a_session_says_how_to_open_one() -> None:
    with pytest.raises(LookupError, match=r"No session is current: .* `with session\(\):`"):
        require_session()


def test_a_listener_whose_object_is_gone_is_skipped() -> None:
    request_listeners.append(lambda: None)  # a weak reference whose object was just dropped
    try:
        notify_request_started(SessionContext(id="nobody-1"))
    finally:
        request_listeners.pop()


def test_a_note_of_ours_joins_the_exceptions_own_notes() -> None:
    error = RuntimeError("with notes")
    error.add_note("the app's own note")
    note_session(error, SessionContext(id="noted-1"))
    note_session(error, SessionContext(id="noted-1"))  # the same session again: nothing new
    assert error.__notes__ == ["the app's own note", "ops-session: raised in session noted-1"]
