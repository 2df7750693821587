from __future__ import annotations

import uuid
from typing import Any

import pytest

from ops_session import (
    SESSION_HEADER_NAME,
    continue_session,
    current_session,
    inject_session,
    session,
)

from .support.hostile import hostile_text


def test_valid_id_opens_a_session_for_the_block() -> None:
    with continue_session({SESSION_HEADER_NAME: "chat-42"}) as continued:
        assert continued is not None
        assert continued.id == "chat-42"
        assert current_session() is continued
    assert current_session() is None


@pytest.mark.parametrize(
    "name", ["mirascope-session-id", "MIRASCOPE-SESSION-ID", "mIrAsCoPe-SeSsIoN-iD"]
)
def test_header_name_matches_in_any_case(name: str) -> None:
    with continue_session({name: "chat-42"}) as continued:
        assert continued is not None and continued.id == "chat-42"


def test_list_value_gives_its_first_element() -> None:
    with continue_session({SESSION_HEADER_NAME: ["chat-1", "chat-2"]}) as continued:
        assert continued is not None and continued.id == "chat-1"


def test_custom_header_name() -> None:
    headers = {"x-conversation": "chat-42", SESSION_HEADER_NAME: "other"}
    with continue_session(headers, header_name="X-Conversation") as continued:
        assert continued is not None and continued.id == "chat-42"


@pytest.mark.parametrize("headers", [{}, {SESSION_HEADER_NAME: ""}, {SESSION_HEADER_NAME: []}])
def test_missing_id_yields_none_and_changes_nothing(headers: dict[str, Any]) -> None:
    with continue_session(headers) as continued:
        assert continued is None
        assert current_session() is None
    with session(id="outer") as outer, continue_session(headers) as continued:
        assert continued is None
        assert current_session() is outer


@pytest.mark.parametrize("value", hostile_text())
def test_invalid_id_yields_none_and_changes_nothing(value: str) -> None:
    with session(id="outer") as outer:
        with continue_session({SESSION_HEADER_NAME: value}) as continued:
            assert continued is None
            assert current_session() is outer
        assert current_session() is outer


@pytest.mark.parametrize("headers", [{}, {SESSION_HEADER_NAME: "<script>"}])
def test_generate_opens_a_new_session_when_the_id_is_missing_or_invalid(
    headers: dict[str, str],
) -> None:
    with continue_session(headers, generate=True) as first:
        assert first is not None and current_session() is first
        assert uuid.UUID(first.id).version == 4
        with continue_session(headers, generate=True) as second:
            assert second is not None and second.id != first.id
        assert current_session() is first
    assert current_session() is None


def test_generate_still_continues_a_valid_id() -> None:
    with continue_session({SESSION_HEADER_NAME: "chat-42"}, generate=True) as continued:
        assert continued is not None and continued.id == "chat-42"


def test_restores_the_previous_session_also_after_an_exception() -> None:
    with session(id="outer") as outer:
        with pytest.raises(KeyError), continue_session({SESSION_HEADER_NAME: "inner"}):
            assert current_session() is not outer
            raise KeyError("job failed")
        assert current_session() is outer


def test_is_the_receiving_half_of_inject_session() -> None:
    with session(id="chat-42"):
        carrier = inject_session({})
    with continue_session(carrier) as continued:
        assert continued is not None and continued.id == "chat-42"
