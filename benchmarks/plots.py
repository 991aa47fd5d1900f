"""PNG plots beside the benchmarks' JSON results, so a reader sees the figures at a glance.

`write_results` (benchmarks/_common.py) renders the plot of each result it writes; run this file
to render every plot again from the JSON already in `benchmarks/results/` (no benchmark reruns):

    .venv/bin/python benchmarks/plots.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are a convenience: the JSON is the result
        return None
    return plt


def retrieval(data: dict[str, Any], plt: Any) -> Any:
    """Recall@k against visibility: the FGA retriever vs "top k, then check"."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for size in data["sizes"]:
        levels = size["levels"]
        xs = [level["visibility"] for level in levels]
        label = f"{size['chunks']:,} chunks"
        ax.plot(xs, [lv["fga_retriever"]["recall_at_k"] for lv in levels], "o-", label=label)
        ax.plot(
            xs,
            [lv["top_k_then_check"]["recall_at_k"] for lv in levels],
            "x--",
            label=f"{label}, top k then check",
        )
    ax.set_xscale("log")
    ax.set_xlabel("share of documents the user may see")
    ax.set_ylabel(f"recall@{data['k']}")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("FGA-filtered retrieval vs top k, then check")
    ax.legend(fontsize=7)
    return fig


def approvals(data: dict[str, Any], plt: Any) -> Any:
    """Approval-to-done latency (median and p95) by delivery mode."""
    modes = list(data["latency"])
    median = [data["latency"][m]["median_ms"] / 1000 for m in modes]
    p95 = [data["latency"][m]["p95_ms"] / 1000 for m in modes]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = range(len(modes))
    ax.bar([x - 0.2 for x in xs], median, width=0.4, label="median")
    ax.bar([x + 0.2 for x in xs], p95, width=0.4, label="p95")
    ax.set_xticks(list(xs), modes)
    ax.set_ylabel("approval to done (s)")
    ax.set_title("Approval to completion by delivery mode")
    ax.legend()
    return fig


def replicas(data: dict[str, Any], plt: Any) -> Any:
    """Approval-to-done p50/p95 on Aegra replicas vs one `langgraph dev`, with the counts."""
    runs = [k for k in ("aegra", "langgraph_dev") if k in data]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    xs = range(len(runs))
    p50 = [data[r]["approval_to_done_ms"]["p50"] / 1000 for r in runs]
    p95 = [data[r]["approval_to_done_ms"]["p95"] / 1000 for r in runs]
    ax.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], p95, width=0.4, label="p95")
    labels = [
        f"{r} ({data[r]['replicas']} proc.)\ngists {data[r]['gists']}/{data[r]['threads']}, "
        f"dup {data[r]['duplicates']}, lost {data[r]['lost']}"
        for r in runs
    ]
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("approval to done (s)")
    rate = (data.get("aegra") or {}).get("approval_rate_per_second")
    pace = f", approvals at {rate:g}/s" if rate else ""
    ax.set_title(f"{data['threads']} pending approvals, {data['replicas']} replicas{pace}")
    ax.legend()
    return fig


def fga_vs_openfga(data: dict[str, Any], plt: Any) -> Any:
    """`warrant fga test` vs `fga model test` by kind of store test."""
    kinds = [k for k in ("consolidated", "list_objects_10k") if k in data]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = range(len(kinds))
    ax.bar([x - 0.2 for x in xs], [data[k]["warrant_fga_test_s"] for k in kinds], 0.4)
    ax.bar([x + 0.2 for x in xs], [data[k]["fga_model_test_s"] for k in kinds], 0.4)
    ax.legend(["warrant fga test", "fga model test"])
    ax.set_xticks(list(xs), kinds)
    ax.set_ylabel("wall time (s, best of runs)")
    ax.set_title("Embedded FGA engine vs OpenFGA's CLI")
    return fig


PLOTTERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "retrieval": retrieval,
    "approvals": approvals,
    "replicas": replicas,
    "fga_vs_openfga": fga_vs_openfga,
}


def plotter_for(name: str) -> Callable[[dict[str, Any], Any], Any] | None:
    """The plot for result `name` (`replicas_rate2` is drawn like `replicas`)."""
    for prefix, plotter in PLOTTERS.items():
        if name == prefix or name.startswith(prefix + "_"):
            return plotter
    return None


def render(name: str, data: dict[str, Any], path: Path) -> Path | None:
    """Draw result `name` to `path` (a PNG); None when it has no plot or matplotlib is absent."""
    plotter = plotter_for(name)
    plt = _pyplot() if plotter is not None else None
    if plotter is None or plt is None:
        return None
    fig = plotter(data, plt)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    drawn = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        png = render(path.stem, json.loads(path.read_text()), path.with_suffix(".png"))
        if png is not None:
            drawn.append(png.name)
    if not drawn:
        sys.exit("nothing drawn (is matplotlib installed?)")
    print("drew " + ", ".join(drawn))


if __name__ == "__main__":
    main()
