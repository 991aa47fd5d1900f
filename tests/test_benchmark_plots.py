"""The benchmarks' plots render from the committed results (what the README shows)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _plots():
    spec = importlib.util.spec_from_file_location("benchmark_plots", BENCHMARKS / "plots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["retrieval", "approvals", "replicas", "fga_vs_openfga"])
def test_each_plotted_result_renders_a_png(name: str, tmp_path: Path) -> None:
    plots = _plots()
    data = json.loads((BENCHMARKS / "results" / f"{name}.json").read_text())
    png = plots.render(name, data, tmp_path / f"{name}.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the README shows the committed plot
    assert f"benchmarks/results/{name}.png" in (BENCHMARKS.parent / "README.md").read_text()


def test_a_result_without_a_plot_draws_nothing(tmp_path: Path) -> None:
    plots = _plots()
    assert plots.render("token_vault", {}, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()
    assert plots.plotter_for("replicas_rate2") is plots.replicas
