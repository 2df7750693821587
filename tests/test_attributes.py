"""Session attributes: JSON-compatible data, frozen into a read-only copy."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import pickle
from typing import Any

import pydantic
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from ops_session import SessionContext, session
from ops_session._core import attributes_json


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
            attributes["meta"]["plan"] = "free"  # type: ignore[index]
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


ATTRIBUTES: dict[str, Any] = {"user": "ada", "tags": ["a", {"b": [1, 2.5]}], "n": None, "ok": True}


def test_attributes_equal_the_json_they_were_given() -> None:
    context = SessionContext(attributes=ATTRIBUTES)
    assert context.attributes == ATTRIBUTES
    assert json.loads(json.dumps(context.attributes)) == ATTRIBUTES
    assert json.loads(bytes(JSONResponse(context.attributes).body)) == ATTRIBUTES


def test_session_context_pickles_copies_and_converts() -> None:
    context = SessionContext(id="attrs-1", attributes=ATTRIBUTES)
    for copied in (pickle.loads(pickle.dumps(context)), copy.deepcopy(context), copy.copy(context)):
        assert copied == context and copied.attributes == ATTRIBUTES
        assert copied.attributes is not None
        with pytest.raises(TypeError, match="read-only"):
            copied.attributes["tags"].append("c")  # type: ignore[union-attr]
    assert dataclasses.asdict(context) == {"id": "attrs-1", "attributes": ATTRIBUTES}


def test_session_context_in_pydantic_and_fastapi_models() -> None:
    class Turn(pydantic.BaseModel):
        session: SessionContext

    turn = Turn(session=SessionContext(id="attrs-2", attributes=ATTRIBUTES))
    assert json.loads(turn.model_dump_json()) == {
        "session": {"id": "attrs-2", "attributes": ATTRIBUTES}
    }

    app = FastAPI()

    @app.get("/session")
    def read() -> SessionContext:
        return SessionContext(id="attrs-3", attributes=ATTRIBUTES)

    response = TestClient(app).get("/session")
    assert response.json() == {"id": "attrs-3", "attributes": ATTRIBUTES}


def empty_list() -> Any:
    return []


def self_containing() -> dict[str, Any]:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    return looped


@pytest.mark.parametrize(
    ("attributes", "error", "message"),
    [
        pytest.param({"x": float("nan")}, ValueError, "JSON cannot carry", id="nan"),
        pytest.param({"x": [float("inf")]}, ValueError, "JSON cannot carry", id="infinity"),
        pytest.param(self_containing(), ValueError, "deeper than 64", id="self-containing"),
        pytest.param(
            functools.reduce(lambda inner, _: [inner], range(200), empty_list()),
            ValueError,
            "deeper than 64",
            id="200-deep",
        ),
    ],
)
def test_values_json_cannot_carry_raise_the_promised_error(
    attributes: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        session(attributes=attributes if isinstance(attributes, dict) else {"x": attributes})


def test_attributes_json_is_computed_once_per_session() -> None:
    context = SessionContext(attributes={"blob": "x" * 30_000})
    first = attributes_json(context.attributes)
    assert first is not None and first.startswith('{"blob":"xxx')
    assert attributes_json(context.attributes) is first
    assert attributes_json(None) is None and attributes_json({}) is None


def test_a_shallow_copy_of_read_only_attributes_is_themselves() -> None:
    attributes = SessionContext(attributes=ATTRIBUTES).attributes
    assert attributes is not None
    assert copy.copy(attributes) is attributes
    assert copy.copy(attributes["tags"]) is attributes["tags"]
    with pytest.raises(TypeError, match="unhashable"):
        hash(attributes["tags"])
