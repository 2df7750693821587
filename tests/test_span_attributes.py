"""The span attributes a session becomes: keys, flattened attributes, the prefix rule."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from ops_session import _span_attributes
from ops_session._span_attributes import check_attribute_prefix, id_keys, span_attributes

NESTED_ATTRIBUTES: dict[str, Any] = {
    "user": "ada",
    "turn": 3,
    "score": 0.5,
    "beta": True,
    "nothing": None,
    "tags": ["a", "b"],
    "counts": [1, 2],
    "ratios": [0.5, 1.5],
    "flags": [True, False],
    "empty": [],
    "mixed": [1, "a"],
    "bools_and_ints": [True, 1],
    "ints_and_floats": [1, 2.5],
    "with_none": ["a", None],
    "nested_list": [[1], [2]],
    "plan": {"tier": "pro", "seats": 3, "ok": None},
    "huge": 2**64,
    "most_negative": -(2**63),
    "huge_list": [1, 2**64],
    "café": "naïve",
    "": "empty key",
}
FLATTENED = {
    "user": "ada",
    "turn": 3,
    "score": 0.5,
    "beta": True,
    "tags": ("a", "b"),
    "counts": (1, 2),
    "ratios": (0.5, 1.5),
    "flags": (True, False),
    "empty": (),
    "mixed": '[1,"a"]',
    "bools_and_ints": "[true,1]",
    "ints_and_floats": "[1,2.5]",
    "with_none": '["a",null]',
    "nested_list": "[[1],[2]]",
    "plan": '{"tier":"pro","seats":3,"ok":null}',
    "huge": "18446744073709551616",
    "most_negative": -(2**63),
    "huge_list": "[1,18446744073709551616]",
    "café": "naïve",
    "": "empty key",
}
DEFAULT_KEYS = id_keys(langfuse_session_id=False, gen_ai_conversation_id=False)


@pytest.mark.parametrize(
    ("langfuse", "gen_ai", "expected"),
    [
        (False, False, ("session.id", "mirascope.ops.session.id")),
        (True, False, ("session.id", "mirascope.ops.session.id", "langfuse.session.id")),
        (False, True, ("session.id", "mirascope.ops.session.id", "gen_ai.conversation.id")),
    ],
)
def test_id_keys(langfuse: bool, gen_ai: bool, expected: tuple[str, ...]) -> None:
    assert id_keys(langfuse_session_id=langfuse, gen_ai_conversation_id=gen_ai) == expected


def test_attributes_flatten_to_what_opentelemetry_takes_or_json() -> None:
    text = json.dumps(NESTED_ATTRIBUTES, separators=(",", ":"), ensure_ascii=False)
    stamp = span_attributes("flat-1", text, id_keys=DEFAULT_KEYS, attribute_prefix="s.a.")
    assert stamp == {
        "session.id": "flat-1",
        "mirascope.ops.session.id": "flat-1",
        "mirascope.ops.session.attributes": text,
        **{f"s.a.{key}": value for key, value in FLATTENED.items()},
    }


def test_without_a_prefix_the_attributes_stay_one_json_value() -> None:
    stamp = span_attributes("j-1", '{"a":{"b":1}}', id_keys=DEFAULT_KEYS, attribute_prefix=None)
    assert stamp == {
        "session.id": "j-1",
        "mirascope.ops.session.id": "j-1",
        "mirascope.ops.session.attributes": '{"a":{"b":1}}',
    }
    assert span_attributes("j-2", None, id_keys=DEFAULT_KEYS, attribute_prefix="p.") == {
        "session.id": "j-2",
        "mirascope.ops.session.id": "j-2",
    }


@pytest.mark.parametrize(
    ("prefix", "clash"),
    [
        ("session.", "'id' overwrite 'session.id'"),
        ("s", "'ession.id' overwrite 'session.id'"),
        ("mirascope.ops.session.", "'id' overwrite 'mirascope.ops.session.id'"),
        ("mirascope.ops.session.attributes", "'' overwrite 'mirascope.ops.session.attributes'"),
        ("langfuse.", "'session.id' overwrite 'langfuse.session.id'"),
        ("gen_ai.", "'conversation.id' overwrite 'gen_ai.conversation.id'"),
    ],
)
def test_a_prefix_under_which_a_session_key_lies_is_refused(prefix: str, clash: str) -> None:
    with pytest.raises(ValueError, match=f"{clash}; choose a prefix"):
        check_attribute_prefix(prefix)


@pytest.mark.parametrize("prefix", ["", b"session.attributes.", None])
def test_a_prefix_must_be_a_non_empty_str(prefix: Any) -> None:
    with pytest.raises(ValueError, match="must be a non-empty str, got"):
        check_attribute_prefix(prefix)


@pytest.mark.parametrize(
    "prefix", ["session.attributes.", "mirascope.ops.session.attributes.", "app_", "sessions."]
)
def test_prefixes_clear_of_the_session_keys_are_accepted(prefix: str) -> None:
    check_attribute_prefix(prefix)


@pytest.mark.parametrize(
    ("session_id", "warned"),
    [
        pytest.param("x" * 200, False, id="200-characters"),
        pytest.param("x" * 201, True, id="201-characters"),
        pytest.param("café", True, id="non-ascii"),
        pytest.param("chat-42", False, id="ordinary"),
    ],
)
def test_ids_langfuse_drops_are_logged(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    session_id: str,
    warned: bool,
) -> None:
    monkeypatch.setattr(_span_attributes, "_warned_about_langfuse", False)
    with caplog.at_level(logging.WARNING, logger="ops_session.otel"):
        span_attributes(session_id, None, id_keys=DEFAULT_KEYS, attribute_prefix=None)
    assert len(caplog.records) == warned
    assert _span_attributes._warned_about_langfuse is warned
