"""OpenFGA CLI store test files (`fga model test`), run against the embedded engine.

The file format is the OpenFGA CLI's: `name`, `model` (DSL text) or `model_file` (`.fga` DSL or
`.json`), `tuples` and/or `tuple_file` / `tuple_files` (YAML, JSON or the CLI's CSV), and `tests`,
each with its own optional `tuples` / `tuple_file`, and `check` (`user`, `object`, `context`,
`assertions: {relation: bool}`), `list_objects` (`user`, `type`, `context`,
`assertions: {relation: [objects]}`) and `list_users` (`object`, `user_filter: [{type,
relation}]`, `context`, `assertions: {relation: {users: [...]}}`).

As the CLI does, every test runs in a fresh store holding the model and the file's tuples plus
the test's own; lists compare as multisets; the report has the CLI's wording.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from auth.fga import engine
from auth.fga.client import TupleKey
from auth.fga.errors import ErrorCode, FGAError
from auth.fga.language import dsl_to_json
from auth.fga.store import MAX_TUPLES_PER_WRITE, Store

# libyaml's loader when PyYAML has it: the same safe subset, several times faster to parse
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_scratch: list[Any] = []  # [Store, uses]: one in-memory database for many tests' stores


def _scratch_store() -> Store:
    """An in-memory database shared by successive tests (each gets its own store in it, as the
    CLI gives each test a fresh store): creating the schema once per test cost more than most
    tests. Renewed now and then so a long run does not keep every old test's tuples."""
    if not _scratch or _scratch[1] >= 200:
        if _scratch:
            _scratch[0].close()
        _scratch[:] = [Store(":memory:"), 0]
    _scratch[1] += 1
    return _scratch[0]


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)


class StoreTestFileError(Exception):
    """The file cannot be run: unreadable, malformed, or its model or tuples are invalid."""


@dataclass
class Result:
    """One assertion: what was asked, what was expected, what the engine said."""

    kind: str  # "check" | "list_objects" | "list_users"
    request: dict[str, Any]
    expected: Any
    got: Any = None
    error: str | None = None

    @property
    def passing(self) -> bool:
        if self.error is not None or self.got is None:
            return False
        if self.kind == "check":
            return bool(self.got == self.expected)
        if self.kind == "list_users":
            return Counter(self.got) == Counter(self.expected.get("users") or [])
        return Counter(self.got) == Counter(self.expected or [])

    def to_json(self) -> dict[str, Any]:
        got: Any = self.got
        if self.kind == "list_users" and got is not None:
            got = {"users": got}
        return {
            "request": self.request,
            "expected": self.expected,
            "got": got,
            "error": self.error,
            "test_result": self.passing,
        }


@dataclass
class TestResult:
    name: str
    description: str = ""
    results: list[Result] = field(default_factory=list)
    error: str | None = None  # the test could not run (its tuples are invalid)

    __test__ = False  # not a pytest class

    @property
    def passing(self) -> bool:
        return self.error is None and all(r.passing for r in self.results)

    def of(self, kind: str) -> list[Result]:
        return [r for r in self.results if r.kind == kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "check_results": [r.to_json() for r in self.of("check")],
            "list_objects_results": [r.to_json() for r in self.of("list_objects")],
            "list_users_results": [r.to_json() for r in self.of("list_users")],
            **({"error": self.error} if self.error else {}),
        }


# ------------------------------------------------------------------------------------------------
# loading


def _load_model(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    if spec.get("model"):
        return _model_from_text(str(spec["model"]), "model")
    model_file = spec.get("model_file")
    if not model_file:
        raise StoreTestFileError("the file has neither `model` nor `model_file`")
    return read_model_file(base / str(model_file))


def read_model_file(path: Path) -> dict[str, Any]:
    """A model from a `.fga` (DSL), `.json` or `fga.mod` (modular model) file;
    `StoreTestFileError` says what is wrong."""
    if path.suffix == ".mod":
        from auth.fga.language.modules import ModularModelError, load_modular_model

        try:
            return load_modular_model(path)
        except OSError as e:
            raise StoreTestFileError(f"cannot read model_file {path}: {e.strerror}") from None
        except ModularModelError as e:
            raise StoreTestFileError(f"invalid modular model {path}: {e}") from None
    try:
        text = path.read_text()
    except OSError as e:
        raise StoreTestFileError(f"cannot read model_file {path}: {e.strerror}") from None
    if path.suffix == ".json":
        try:
            model = json.loads(text)
        except json.JSONDecodeError as e:
            raise StoreTestFileError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(model, dict):
            raise StoreTestFileError(f"{path} does not hold a JSON model object")
        return model
    return _model_from_text(text, str(path))


def _model_from_text(text: str, where: str) -> dict[str, Any]:
    try:
        return dsl_to_json(text)
    except Exception as e:  # the parser's syntax error carries line and column
        raise StoreTestFileError(f"invalid model in {where}: {e}") from None


def parse_tuple(raw: Any, where: str) -> TupleKey:
    """One tuple of a store test file (`user`, `relation`, `object`, optional `condition`)."""
    if not isinstance(raw, dict):
        raise StoreTestFileError(f"{where}: a tuple must be a mapping, got {raw!r}")
    missing = [k for k in ("user", "relation", "object") if not raw.get(k)]
    if missing:
        raise StoreTestFileError(f"{where}: tuple {raw!r} lacks {', '.join(missing)}")
    condition = raw.get("condition") or None
    name, context = None, None
    if condition is not None:
        if not isinstance(condition, dict) or not condition.get("name"):
            raise StoreTestFileError(f"{where}: a tuple's condition needs a name")
        name = str(condition["name"])
        context = condition.get("context") or None
    return TupleKey(
        user=str(raw["user"]),
        relation=str(raw["relation"]),
        object=str(raw["object"]),
        condition_name=name,
        condition_context=context,
    )


def _read_tuple_file(path: Path) -> list[TupleKey]:
    try:
        text = path.read_text()
    except OSError as e:
        raise StoreTestFileError(f"cannot read tuple file {path}: {e.strerror}") from None
    if path.suffix == ".csv":
        return _csv_tuples(text, path)
    try:
        data = _yaml(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise StoreTestFileError(f"{path} is not valid YAML/JSON: {e}") from None
    if not isinstance(data, list):
        raise StoreTestFileError(f"{path} must hold a list of tuples")
    return [parse_tuple(t, str(path)) for t in data]


def _csv_tuples(text: str, path: Path) -> list[TupleKey]:
    """The OpenFGA CLI's CSV: user_type,user_id,user_relation,relation,object_type,object_id,..."""
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            user = f"{row['user_type']}:{row['user_id']}"
            if row.get("user_relation"):
                user += f"#{row['user_relation']}"
            context = json.loads(row["condition_context"]) if row.get("condition_context") else None
            out.append(
                TupleKey(
                    user=user,
                    relation=row["relation"],
                    object=f"{row['object_type']}:{row['object_id']}",
                    condition_name=row.get("condition_name") or None,
                    condition_context=context,
                )
            )
        except (KeyError, json.JSONDecodeError) as e:
            raise StoreTestFileError(f"{path}: malformed CSV row {row!r} ({e})") from None
    return out


def _file_tuples(spec: dict[str, Any], base: Path) -> list[TupleKey]:
    tuples = [parse_tuple(t, "tuples") for t in spec.get("tuples") or []]
    files = list(spec.get("tuple_files") or [])
    if spec.get("tuple_file"):
        files.insert(0, spec["tuple_file"])
    for name in files:
        tuples += _read_tuple_file(base / str(name))
    return tuples


def load(path: Path) -> dict[str, Any]:
    try:
        spec = _yaml(path.read_text())
    except OSError as e:
        raise StoreTestFileError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise StoreTestFileError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(spec, dict):
        raise StoreTestFileError(f"{path} must be a YAML mapping with `model` and `tests`")
    if not isinstance(spec.get("tests") or [], list):
        raise StoreTestFileError(f"{path}: `tests` must be a list")
    return spec


# ------------------------------------------------------------------------------------------------
# running


def run_file(path: str | Path) -> list[TestResult]:
    """Run every test of a store test file on the embedded engine."""
    path = Path(path)
    spec = load(path)
    base = path.parent
    model = _load_model(spec, base)
    global_tuples = _file_tuples(spec, base)
    return [
        _run_test(test, i, model, global_tuples, base)
        for i, test in enumerate(spec.get("tests") or [])
    ]


def _run_test(
    test: Any, index: int, model: dict[str, Any], global_tuples: list[TupleKey], base: Path
) -> TestResult:
    if not isinstance(test, dict):
        raise StoreTestFileError(f"test #{index + 1} must be a mapping")
    result = TestResult(
        name=str(test.get("name") or f"test-{index + 1}"),
        description=str(test.get("description") or ""),
    )
    tuples = list(global_tuples) + [parse_tuple(t, result.name) for t in test.get("tuples") or []]
    if test.get("tuple_file"):
        tuples += _read_tuple_file(base / str(test["tuple_file"]))
    store = _scratch_store()
    store_id = store.create_store("storetest")
    try:
        try:
            model_id = store.write_model(store_id, model)
        except FGAError as e:
            raise StoreTestFileError(f"invalid model: {e}") from None
        try:
            for start in range(0, len(tuples), MAX_TUPLES_PER_WRITE):
                store.write(store_id, tuples[start : start + MAX_TUPLES_PER_WRITE])
        except FGAError as e:
            if e.code == ErrorCode.invalid_tuple:
                # OpenFGA's CLI reports a tuple its write refuses as a validation error (2000)
                e = FGAError(ErrorCode.validation_error, e.message)
            result.error = f"failed to write the test's tuples: {e}"
            return result
        ts, source = store.typesystem(store_id, model_id), store.source(store_id)
        _checks(result, test, ts, source)
        _list_objects(result, test, ts, source)
        _list_users(result, test, ts, source)
    finally:
        store.delete_store(store_id)
    return result


def _assertions(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("assertions"), dict):
        raise StoreTestFileError(f"{where}: each entry needs an `assertions` mapping")
    return entry["assertions"]


def _each(entry: dict[str, Any], one: str, many: str) -> list[Any]:
    """`user: x` or `users: [x, y]` (the CLI accepts both, and runs every combination)."""
    values = entry.get(many)
    if isinstance(values, list) and values:
        return values
    return [entry.get(one)]


def _checks(result: TestResult, test: dict[str, Any], ts: Any, source: Any) -> None:
    for entry in test.get("check") or []:
        assertions = _assertions(entry, result.name)
        for user in _each(entry, "user", "users"):
            for obj in _each(entry, "object", "objects"):
                pair = {**entry, "user": user, "object": obj}
                _check_entry(result, pair, assertions, ts, source)


def _check_entry(
    result: TestResult, entry: dict[str, Any], assertions: dict[str, Any], ts: Any, source: Any
) -> None:
    for relation, expected in assertions.items():
        request = {
            "user": entry.get("user"),
            "relation": relation,
            "object": entry.get("object"),
        }
        if entry.get("context") is not None:
            request["context"] = entry["context"]
        _record(
            result,
            Result("check", request, bool(expected)),
            partial(
                engine.check,
                ts,
                source,
                str(entry.get("user")),
                str(relation),
                str(entry.get("object")),
                context=entry.get("context"),
            ),
        )


def _record(result: TestResult, r: Result, ask: Callable[[], Any]) -> None:
    """Ask the engine; its answer, or its error, goes into `r`, and `r` into the result."""
    try:
        r.got = ask()
    except FGAError as e:
        r.error = str(e)
    result.results.append(r)


def _list_objects(result: TestResult, test: dict[str, Any], ts: Any, source: Any) -> None:
    for entry in test.get("list_objects") or []:
        for relation, expected in _assertions(entry, result.name).items():
            request = {"user": entry.get("user"), "relation": relation, "type": entry.get("type")}
            if entry.get("context") is not None:
                request["context"] = entry["context"]
            _record(
                result,
                Result("list_objects", request, list(expected or [])),
                partial(
                    engine.list_objects,
                    ts,
                    source,
                    str(entry.get("user")),
                    str(relation),
                    str(entry.get("type")),
                    context=entry.get("context"),
                ),
            )


def _list_users(result: TestResult, test: dict[str, Any], ts: Any, source: Any) -> None:
    for entry in test.get("list_users") or []:
        filters_raw = entry.get("user_filter") if isinstance(entry, dict) else None
        if not isinstance(filters_raw, list) or not filters_raw:
            raise StoreTestFileError(f"{result.name}: list_users needs a `user_filter` list")
        filters = [
            str(f.get("type")) + (f"#{f['relation']}" if f.get("relation") else "")
            for f in filters_raw
            if isinstance(f, dict)
        ]
        obj = str(entry.get("object"))
        obj_type, _, obj_id = obj.partition(":")
        for relation, expected in _assertions(entry, result.name).items():
            request = {
                "object": {"type": obj_type, "id": obj_id},
                "relation": relation,
                "user_filters": filters_raw,
            }
            if entry.get("context") is not None:
                request["context"] = entry["context"]
            want = expected if isinstance(expected, dict) else {"users": expected}
            r = Result("list_users", request, {"users": list(want.get("users") or [])})
            try:
                r.got = engine.list_users(
                    ts, source, obj, str(relation), filters, context=entry.get("context")
                )
            except FGAError as e:
                r.error = str(e)
            result.results.append(r)


# ------------------------------------------------------------------------------------------------
# the report, worded as `fga model test` words it


def _go_list(values: Any) -> str:
    return "[" + " ".join(str(v) for v in values) + "]"


def _go_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return _go_list(_go_value(x) for x in v)
    return str(v)


def _failure_line(r: Result) -> str:
    q = r.request
    context = ""
    if q.get("context"):
        items = " ".join(f"{k}:{_go_value(v)}" for k, v in sorted(q["context"].items()))
        context = f", context:&map[{items}]"
    if r.kind == "check":
        got = "N/A" if r.got is None else str(r.got).lower()
        line = (
            f"ⅹ Check(user={q['user']},relation={q['relation']},object={q['object']}{context}): "
            f"expected={str(r.expected).lower()}, got={got}"
        )
    elif r.kind == "list_objects":
        got = "N/A" if r.got is None else _go_list(r.got)
        line = (
            f"ⅹ ListObjects(user={q['user']},relation={q['relation']},type={q['type']}{context}): "
            f"expected={_go_list(r.expected)}, got={got}"
        )
    else:
        obj = q["object"]
        flt = q["user_filters"][0] if q["user_filters"] else {}
        got = "N/A" if r.got is None else "{Users:" + _go_list(r.got) + "}"
        flt_text = f"{{Type:{flt.get('type')} Relation:{flt.get('relation') or '<nil>'}}}"
        line = (
            f"ⅹ ListUsers(object={{Type:{obj['type']} Id:{obj['id']}}},relation={q['relation']},"
            f"user_filter={flt_text}{context}):"
            f" expected={{Users:{_go_list(r.expected['users'])}}}, got={got}"
        )
    if r.error:
        line += f", error={r.error}"
    return line


def _test_failures(t: TestResult) -> str:
    out = f"(FAILING) {t.name}: "
    if t.error:
        return out + t.error
    parts = []
    for kind, label in (
        ("check", "Checks"),
        ("list_objects", "ListObjects"),
        ("list_users", "ListUsers"),
    ):
        rs = t.of(kind)
        if rs:
            parts.append(f"{label} ({sum(r.passing for r in rs)}/{len(rs)} passing)")
    out += " | ".join(parts)
    for r in t.results:
        if not r.passing:
            out += "\n" + _failure_line(r)
    return out


def report(results: list[TestResult]) -> str:
    """The failures, then `# Test Summary #` with the counts, as the OpenFGA CLI prints them."""
    failures = "\n---\n".join(_test_failures(t) for t in results if not t.passing)
    summary = failures
    if results:
        if failures:
            summary += "\n---\n"
        summary += (
            f"# Test Summary #\nTests {sum(t.passing for t in results)}/{len(results)} passing"
        )
        for kind, label in (
            ("check", "Checks"),
            ("list_objects", "ListObjects"),
            ("list_users", "ListUsers"),
        ):
            rs = [r for t in results for r in t.of(kind)]
            if rs:
                summary += f"\n{label} {sum(r.passing for r in rs)}/{len(rs)} passing"
    return summary
