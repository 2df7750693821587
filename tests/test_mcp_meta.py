"""The `_meta` carrier both MCP integrations share: the key, and writing it into params."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ops_session._mcp_meta import SESSION_META_KEY, with_session_meta

# basic/index of the 2026-07-28 specification: an optional prefix of dot-separated labels (each
# starts with a letter and ends with a letter or digit) and a slash, then a name that starts
# and ends with an alphanumeric, with hyphens, underscores and dots allowed in between.
_LABEL = r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_META_KEY = re.compile(
    rf"(?:(?P<prefix>{_LABEL}(?:\.{_LABEL})*)/)?[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?"
)


def test_the_key_follows_the_specifications_naming_rules() -> None:
    match = _META_KEY.fullmatch(SESSION_META_KEY)
    assert match is not None and match["prefix"] is not None, "a vendor key has a prefix"
    labels = match["prefix"].split(".")
    assert len(labels) >= 2 and labels[1] not in ("modelcontextprotocol", "mcp"), "not reserved"
    assert SESSION_META_KEY not in ("traceparent", "tracestate", "baggage", "progressToken")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(None, {"_meta": {SESSION_META_KEY: "chat-42"}}, id="no-params"),
        pytest.param(
            {"name": "t"}, {"name": "t", "_meta": {SESSION_META_KEY: "chat-42"}}, id="no-meta"
        ),
        pytest.param(
            {"_meta": {"progressToken": 1}},
            {"_meta": {"progressToken": 1, SESSION_META_KEY: "chat-42"}},
            id="other-keys-kept",
        ),
        pytest.param({"_meta": {SESSION_META_KEY: "chat-own"}}, None, id="caller-set-kept"),
        pytest.param({"_meta": "not an object"}, None, id="malformed-meta-untouched"),
    ],
)
def test_with_session_meta(params: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    before = repr(params)
    assert with_session_meta(params, "chat-42") == expected
    assert repr(params) == before, "the caller's params are never changed"
