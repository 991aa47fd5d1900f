"""What every benchmark shares: a throwaway offline environment, latency figures, result files."""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Nothing a benchmark starts may reach the network or the user's own data folder.
_OFFLINE = {
    "LANGSMITH_TRACING": "false",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


def prepare_environment(**extra: str) -> None:
    """Import the project from this checkout, in a temporary data folder, offline; call before
    importing project modules (settings are read once)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("WARRANT_DATA_DIR", tempfile.mkdtemp(prefix="warrant-bench-"))
    for key, value in {**_OFFLINE, **extra}.items():
        os.environ.setdefault(key, value)


def latency_stats(samples: list[float], digits: int = 2) -> dict[str, float]:
    """n, mean, median, p95, min and max in milliseconds, from samples in seconds."""
    ordered = sorted(samples)
    ms = [s * 1000 for s in ordered]
    return {
        "n": len(samples),
        "mean_ms": round(statistics.fmean(ms), digits),
        "median_ms": round(statistics.median(ms), digits),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], digits),
        "min_ms": round(ms[0], digits),
        "max_ms": round(ms[-1], digits),
    }


def jwt_subject(token: str) -> str:
    """The `sub` of a JWT (the user id a node acts for); the signature is not checked here."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def write_results(name: str, data: Any) -> Path:
    """Write `benchmarks/results/<name>.json` (and its PNG plot, where it has one); return its
    path."""
    from plots import render

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    png = render(name, data, path.with_suffix(".png"))
    if png is not None:
        print(f"plot: {png}")
    return path
