"""The outgoing side's environment variables: read once, when first needed."""

from __future__ import annotations

import pytest

from ops_session._header import session_header_name
from ops_session._variables import Variable, forget_variables


def number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None


def test_a_variable_is_read_once_until_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    variable = Variable("OPS_SESSION_TEST_NUMBER", 7, number)
    monkeypatch.delenv("OPS_SESSION_TEST_NUMBER", raising=False)
    assert variable.get() == 7
    monkeypatch.setenv("OPS_SESSION_TEST_NUMBER", "42")
    assert variable.get() == 7, "read once: a change needs set_* in code, or forget()"
    variable.forget()
    assert variable.get() == 42
    monkeypatch.setenv("OPS_SESSION_TEST_NUMBER", "  ")
    forget_variables()
    assert variable.get() == 7, "blank is the default"


def test_a_bad_value_raises_every_time_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variable = Variable("OPS_SESSION_TEST_NUMBER", 7, number)
    monkeypatch.setenv("OPS_SESSION_TEST_NUMBER", "many")
    raised = []
    for _ in range(2):
        with pytest.raises(ValueError, match=r"OPS_SESSION_TEST_NUMBER='many' is invalid") as info:
            variable.get()
        raised.append(info.value)
    assert raised[0] is not raised[1], "a fresh exception each time: no growing traceback"
    monkeypatch.setenv("OPS_SESSION_TEST_NUMBER", "3")
    variable.forget()
    assert variable.get() == 3


def test_the_header_name_variable_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", " X-Conversation-Id ")
    assert session_header_name() == "X-Conversation-Id"
    monkeypatch.setenv("OPS_SESSION_HEADER_NAME", "X-Other")
    assert session_header_name() == "X-Conversation-Id"
