"""Modular models (fga.mod, `module`, `extend type`): generated module sets combined by the
embedded transformer and by OpenFGA's `fga model transform` must give the same JSON (module
and source-file metadata included), the same refusals, and a store test on an `fga.mod` runs."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from auth.fga import storetest
from auth.fga.language.modules import ModularModelError, load_modular_model, read_mod_file
from tests.fga_binary import fga_binary

BINARY = fga_binary()
needs_binary = pytest.mark.skipif(BINARY is None, reason="OpenFGA's fga binary is not installed")


def _generated(seed: int) -> dict[str, str]:
    """Files of one modular model: types spread over 2-3 modules, some extended elsewhere."""
    rng = random.Random(seed)
    modules = [f"m{i}" for i in range(rng.randint(2, 3))]
    files = {m: [f"module {m}", ""] for m in modules}
    files[modules[0]] += ["type user", ""]
    types = [f"t{i}" for i in range(rng.randint(2, 5))]
    home = {t: rng.choice(modules) for t in types}
    conditions = []
    for t in types:
        rels = [f"r{j}" for j in range(rng.randint(0, 3))]
        lines = [f"type {t}"]
        if rels:
            lines.append("  relations")
            for r in rels:
                cond = ""
                if rng.random() < 0.3:
                    cname = f"c_{t}_{r}"
                    conditions.append((rng.choice(modules), cname))
                    cond = f", user with {cname}"
                lines.append(f"    define {r}: [user{cond}]")
        files[home[t]] += [*lines, ""]
        if rng.random() < 0.6:
            other = rng.choice([m for m in modules if m != home[t]])
            ext = [f"extend type {t}", "  relations"]
            for k in range(rng.randint(1, 2)):
                target = rng.choice(rels) if rels and rng.random() < 0.5 else None
                ext.append(f"    define x{k}: " + (target or "[user]"))
            files[other] += [*ext, ""]
    for module, cname in conditions:
        files[module] += [f"condition {cname}(x: int) {{", "  x < 3", "}", ""]
    out = {f"{m}.fga": "\n".join(lines) for m, lines in files.items()}
    out["fga.mod"] = "schema: '1.2'\ncontents:\n" + "".join(f"  - {m}.fga\n" for m in modules)
    return out


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "fga.mod"


def _theirs(mod: Path) -> dict | None:
    out = subprocess.run(
        [BINARY, "model", "transform", "--file", str(mod)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(out.stdout) if out.returncode == 0 else None


def _ours(mod: Path) -> dict | None:
    from auth.fga.language import compact

    try:
        return compact(load_modular_model(mod))
    except ModularModelError:
        return None


@needs_binary
@pytest.mark.parametrize("seed", range(40))
def test_generated_modular_models_transform_as_openfga(tmp_path: Path, seed: int) -> None:
    mod = _write(tmp_path, _generated(seed))
    assert _ours(mod) == _theirs(mod)


BROKEN = {
    "duplicate-relation": {
        "a.fga": "module a\n\ntype user\n\ntype doc\n  relations\n    define viewer: [user]\n",
        "b.fga": "module b\n\nextend type doc\n  relations\n    define viewer: [user]\n",
    },
    "unknown-extended-type": {
        "a.fga": "module a\n\ntype user\n",
        "b.fga": "module b\n\nextend type nope\n  relations\n    define viewer: [user]\n",
    },
    "duplicate-type": {
        "a.fga": "module a\n\ntype user\n",
        "b.fga": "module b\n\ntype user\n",
    },
    "duplicate-condition": {
        "a.fga": "module a\n\ntype user\n\ncondition c(x: int) {\n  x < 1\n}\n",
        "b.fga": "module b\n\ncondition c(x: int) {\n  x < 2\n}\n",
    },
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_module_sets_are_refused_like_openfga(tmp_path: Path, name: str) -> None:
    files = {**BROKEN[name], "fga.mod": "schema: '1.2'\ncontents:\n  - a.fga\n  - b.fga\n"}
    mod = _write(tmp_path, files)
    with pytest.raises(ModularModelError):
        load_modular_model(mod)
    if BINARY is not None:
        assert _theirs(mod) is None


@pytest.mark.parametrize(
    "text,message",
    [
        ("contents:\n  - a.fga\n", "missing schema field"),
        ("schema: '1.1'\ncontents:\n  - a.fga\n", "unsupported schema version"),
        ("schema: '1.2'\ncontents: a.fga\n", "unexpected contents type"),
        ("schema: '1.2'\ncontents:\n  - a.txt\n", "should use fga file extension"),
        ("schema: '1.2'\n", "missing contents field"),
    ],
)
def test_mod_file_validation(text: str, message: str) -> None:
    with pytest.raises(ModularModelError) as e:
        read_mod_file(text)
    assert message in str(e.value)


def test_a_store_test_on_an_fga_mod_runs(tmp_path: Path) -> None:
    mod = _write(tmp_path, _generated(3))
    model = load_modular_model(mod)
    doc = next(td for td in model["type_definitions"] if td.get("relations"))
    relation = next(iter(doc["relations"]))
    spec = tmp_path / "store.fga.yaml"
    spec.write_text(
        "model_file: fga.mod\n"
        f"tuples:\n  - {{user: user:anne, relation: {relation}, object: {doc['type']}:1}}\n"
        "tests:\n  - name: t\n    check:\n"
        f"      - {{user: user:anne, object: {doc['type']}:1, assertions: {{{relation}: true}}}}\n"
    )
    [result] = storetest.run_file(spec)
    assert result.passing, result
