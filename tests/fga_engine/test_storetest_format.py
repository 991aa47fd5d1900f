"""Store test files and request input as OpenFGA's CLI and server treat them: `users:` /
`objects:` lists in a check entry run every pair, a duplicate tuple fails the file (2004), a
tuple the model refuses is reported as 2000, and ids over OpenFGA's limits or with control
characters are refused (2000). Each file is also run by `fga model test` when installed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from auth.fga import engine, storetest
from auth.fga.client import TupleKey
from auth.fga.errors import ErrorCode, FGAError
from tests.fga_binary import fga_binary
from tests.fga_engine.helpers import store_with, tk

MODEL = """model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
"""


def _file(tmp_path: Path, tuples: list[dict[str, Any]], check: list[dict[str, Any]]) -> Path:
    path = tmp_path / "case.fga.yaml"
    spec = {"name": "t", "model": MODEL, "tuples": tuples, "tests": [{"name": "t", "check": check}]}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _openfga_passes(path: Path) -> bool | None:
    binary = fga_binary()
    if binary is None:
        return None
    out = subprocess.run(
        [binary, "model", "test", "--tests", str(path)], capture_output=True, timeout=120
    )
    return out.returncode == 0


def _ours_passes(path: Path) -> bool:
    return all(r.passing for r in storetest.run_file(path))


def test_users_and_objects_lists_run_every_pair(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        [{"user": "user:a", "relation": "viewer", "object": "doc:1"}],
        [
            {
                "users": ["user:a", "user:b"],
                "objects": ["doc:1", "doc:2"],
                "assertions": {"viewer": True},
            }
        ],
    )
    results = storetest.run_file(path)[0].results
    asked = [(r.request["user"], r.request["object"], r.got) for r in results]
    assert asked == [
        ("user:a", "doc:1", True),
        ("user:a", "doc:2", False),
        ("user:b", "doc:1", False),
        ("user:b", "doc:2", False),
    ]
    assert _openfga_passes(path) in (False, None)


@pytest.mark.parametrize(
    "tuples,code",
    [
        ([{"user": "user:a", "relation": "viewer", "object": "doc:1"}] * 2, 2004),
        ([{"user": "user:a", "relation": "nope", "object": "doc:1"}], 2000),
        ([{"user": "user:" + "a" * 600, "relation": "viewer", "object": "doc:1"}], 2000),
        ([{"user": "user:a", "relation": "viewer", "object": "doc:" + "1" * 300}], 2000),
        ([{"user": "user:a\x01b", "relation": "viewer", "object": "doc:1"}], 2000),
    ],
    ids=["duplicate", "unknown-relation", "long-user", "long-object", "control-char"],
)
def test_a_file_openfga_refuses_fails_with_its_code(
    tmp_path: Path, tuples: list[dict[str, Any]], code: int
) -> None:
    path = _file(
        tmp_path, tuples, [{"user": "user:a", "object": "doc:1", "assertions": {"viewer": True}}]
    )
    [result] = storetest.run_file(path)
    assert not result.passing and result.error is not None
    assert f"OpenFGA error {code} " in result.error
    assert _openfga_passes(path) in (False, None)


def test_requests_over_openfga_limits_are_validation_errors() -> None:
    store, sid, mid = store_with(MODEL, [tk("user:a", "viewer", "doc:1")])
    ts, source = store.typesystem(sid, mid), store.source(sid)
    assert engine.check(ts, source, "user:" + "a" * 507, "viewer", "doc:1") is False  # 512 bytes
    for user, obj in (("user:" + "a" * 508, "doc:1"), ("user:a", "doc:" + "1" * 253)):
        with pytest.raises(FGAError) as e:
            engine.check(ts, source, user, "viewer", obj)
        assert e.value.code == ErrorCode.validation_error
    with pytest.raises(FGAError) as e:
        engine.check(ts, source, "user:a\x7f", "viewer", "doc:1")
    assert e.value.code == ErrorCode.validation_error
    with pytest.raises(FGAError):
        engine.check(
            ts,
            source,
            "user:a",
            "viewer",
            "doc:1",
            contextual_tuples=[TupleKey("user:a\x00", "viewer", "doc:1")],
        )


def test_a_model_with_more_than_25_conditions_is_refused() -> None:
    from auth.fga.store import Store

    conditions = "".join(f"condition c{i}(x: int) {{\n  x < {i}\n}}\n" for i in range(26))
    relations = "".join(f"    define r{i}: [user with c{i}]\n" for i in range(26))
    dsl = f"model\n  schema 1.1\ntype user\ntype doc\n  relations\n{relations}{conditions}"
    from auth.fga.language import dsl_to_json

    store = Store(":memory:")
    sid = store.create_store("t")
    with pytest.raises(FGAError) as e:
        store.write_model(sid, dsl_to_json(dsl))
    assert e.value.code == ErrorCode.validation_error and "25" in e.value.message
