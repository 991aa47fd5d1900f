"""OpenFGA's own transformer cases: the DSL of each must give exactly OpenFGA's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auth.fga.language import dsl_to_json
from tests.reference import OPENFGA_DATA

CASES = OPENFGA_DATA / "transformer"
CASE_DIRS = sorted(CASES.glob("*"))


def test_all_29_cases_are_present() -> None:
    assert len(CASE_DIRS) == 29, f"OpenFGA's transformer cases are missing from {CASES}"


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_dsl_gives_openfga_json(case: Path) -> None:
    dsl = (case / "authorization-model.fga").read_text()
    expected = json.loads((case / "authorization-model.json").read_text())
    assert dsl_to_json(dsl) == expected
