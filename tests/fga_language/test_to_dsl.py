"""json_to_dsl: OpenFGA's DSL text for a JSON model, and the round trip through dsl_to_json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from auth.fga.language import DSLConversionError, dsl_to_json, json_to_dsl
from tests.fga_language.oracle import dsl_models
from tests.reference import OPENFGA_DATA

CASES = sorted((OPENFGA_DATA / "transformer").glob("*"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_json_gives_openfgas_dsl_text(case: Path) -> None:
    model = json.loads((case / "authorization-model.json").read_text())
    assert json_to_dsl(model) == (case / "authorization-model.fga").read_text()


@settings(max_examples=60, deadline=None)
@given(dsl_models())
def test_round_trip_keeps_the_model(dsl: str) -> None:
    model = dsl_to_json(dsl)
    assert dsl_to_json(json_to_dsl(model)) == model


def _model(rewrite: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": "1.1",
        "type_definitions": [
            {"type": "user"},
            {
                "type": "doc",
                "relations": {"a": {"this": {}}, "v": rewrite},
                "metadata": {
                    "relations": {
                        "a": {"directly_related_user_types": [{"type": "user"}]},
                        "v": {"directly_related_user_types": [{"type": "user", "wildcard": {}}]},
                    }
                },
            },
        ],
    }


A = {"computedUserset": {"relation": "a"}}


def test_direct_assignment_moves_to_the_front_of_a_union() -> None:
    text = json_to_dsl(_model({"union": {"child": [A, {"this": {}}]}}))
    assert "    define v: [user:*] or a\n" in text


@pytest.mark.parametrize(
    "rewrite",
    [
        {"difference": {"base": A, "subtract": {"this": {}}}},
        {"union": {"child": [{"this": {}}, {"intersection": {"child": [A, {"this": {}}]}}]}},
        {},
    ],
    ids=["direct-subtracted", "two-direct", "empty-rewrite"],
)
def test_rewrites_the_dsl_cannot_write_are_refused(rewrite: dict[str, Any]) -> None:
    with pytest.raises(DSLConversionError, match="'v' relation definition under the 'doc' type"):
        json_to_dsl(_model(rewrite))


def test_condition_key_must_match_its_name() -> None:
    model = _model(A) | {"conditions": {"c": {"name": "d", "expression": "x", "parameters": {}}}}
    with pytest.raises(DSLConversionError, match="different nested condition name"):
        json_to_dsl(model)


def test_not_a_model_is_refused() -> None:
    with pytest.raises(DSLConversionError):
        json_to_dsl("model")  # type: ignore[arg-type]
