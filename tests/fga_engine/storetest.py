"""A minimal runner for OpenFGA CLI store test files (`fga model test` format) on our engine,
used to compare answers with OpenFGA's own binary in the engine tests."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from auth.fga import engine
from auth.fga.errors import FGAError
from auth.fga.store import Store
from tests.fga_binary import fga_binary
from tests.fga_engine.helpers import model_json, tuple_from_yaml


def run_with_fga(path: Path) -> tuple[bool, str]:
    """(all passed, output) from OpenFGA's `fga model test`."""
    out = subprocess.run(
        [fga_binary() or "fga", "model", "test", "--tests", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.returncode == 0, out.stdout + out.stderr


def run_with_engine(path: Path) -> list[str]:
    """Failures of the file's assertions on the embedded engine (empty: all passed)."""
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    failures: list[str] = []
    base_tuples = [tuple_from_yaml(t) for t in spec.get("tuples") or []]
    for test in spec["tests"]:
        store = Store(":memory:")
        sid = store.create_store("t")
        mid = store.write_model(sid, model_json(spec["model"]))
        tuples = base_tuples + [tuple_from_yaml(t) for t in test.get("tuples") or []]
        for i in range(0, len(tuples), 100):
            store.write(sid, writes=tuples[i : i + 100])
        ts, src = store.typesystem(sid, mid), store.source(sid)
        for c in test.get("check") or []:
            for relation, want in c["assertions"].items():
                try:
                    got: Any = engine.check(
                        ts, src, c["user"], relation, c["object"], context=c.get("context")
                    )
                except FGAError as e:
                    got = f"error {int(e.code)}"
                if got != want:
                    failures.append(f"check {c['user']} {relation} {c['object']}: {got} != {want}")
        for lo in test.get("list_objects") or []:
            for relation, want in lo["assertions"].items():
                try:
                    got = engine.list_objects(
                        ts, src, lo["user"], relation, lo["type"], context=lo.get("context")
                    )
                    ok = Counter(got) == Counter(want or [])
                except FGAError as e:
                    got, ok = f"error {int(e.code)}", False
                if not ok:
                    failures.append(f"list_objects {lo['user']} {relation}: {got} != {want}")
        for lu in test.get("list_users") or []:
            filters = [
                f["type"] + (f"#{f['relation']}" if f.get("relation") else "")
                for f in lu["user_filter"]
            ]
            for relation, want in lu["assertions"].items():
                try:
                    got = engine.list_users(
                        ts, src, lu["object"], relation, filters, context=lu.get("context")
                    )
                    ok = Counter(got) == Counter(want.get("users") or [])
                except FGAError as e:
                    got, ok = f"error {int(e.code)}", False
                if not ok:
                    failures.append(f"list_users {lu['object']} {relation}: {got} != {want}")
        store.close()
    return failures
