"""OpenFGA's DSL syntax-validation cases: valid ones parse, invalid ones are refused with
OpenFGA's first error (line, column and message: ours are 1-based, the file's 0-based)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from auth.fga.language import DSLSyntaxError, dsl_to_json
from tests.reference import OPENFGA_DATA

CASES_FILE = OPENFGA_DATA / "dsl-syntax-validation-cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text())
VALID = [c for c in CASES if not c.get("expected_errors")]
INVALID = [c for c in CASES if c.get("expected_errors")]


def test_case_counts() -> None:
    if not CASES:
        pytest.skip(f"OpenFGA reference data not found at {CASES_FILE}")
    assert (len(CASES), len(INVALID)) == (81, 50)


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_valid_dsl_parses(case: dict[str, Any]) -> None:
    model = dsl_to_json(case["dsl"])
    assert isinstance(model, dict)


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_dsl_is_refused_with_openfgas_first_error(case: dict[str, Any]) -> None:
    with pytest.raises(DSLSyntaxError) as caught:
        dsl_to_json(case["dsl"])
    first, expected = caught.value.errors[0], case["expected_errors"][0]
    assert (first.line - 1, first.column - 1) == (
        expected["line"]["start"],
        expected["column"]["start"],
    )
    assert first.message == expected["msg"]
    # every problem is named in the exception's text, with its position
    assert f"line {first.line}, column {first.column}: {first.message}" in str(caught.value)


def test_every_semantic_error_is_reported() -> None:
    """Duplicate-extension errors come one per repeated line, as OpenFGA lists them."""
    case = next(c for c in INVALID if c["name"] == "disallows multiple extends for same type")
    with pytest.raises(DSLSyntaxError) as caught:
        dsl_to_json(case["dsl"])
    got = [(e.line - 1, e.column - 1, e.message) for e in caught.value.errors]
    expected = [
        (e["line"]["start"], e["column"]["start"], e["msg"]) for e in case["expected_errors"]
    ]
    assert got == expected
