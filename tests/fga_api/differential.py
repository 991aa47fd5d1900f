"""Random models, tuples and queries for comparing the embedded engine with OpenFGA's own.

A generated case is written as an OpenFGA CLI store test file; `fga model test --verbose` gives
OpenFGA's answer to every query, `auth.fga.storetest.run_file` the embedded engine's, and
`compare` lists every query where the two differ (an error on one side only is a difference).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from auth.fga import storetest
from auth.fga.language import dsl_to_json

MEMBER = ["[user]", "[user, group#member]", "[user, user:*]", "[user, user:*, group#member]"]
EDITOR = ["[user]", "[user, user with cond]", "[user, group#member]", "[user, user:*] or owner"]
RESTRICTED = [
    "[user with cond]",
    "[user with cond, group#member with cond]",
    "[user with cond, user:*]",
]
FOLDER_VIEWER = [
    "[user, group#member] or owner",
    "[user, user:*] or owner or viewer from parent",
    "[user] or viewer from parent",
    "[user, group#member] but not owner",
]
DOC_VIEWER = [
    "[user, user:*, group#member] or owner",
    "[user] or editor or viewer from parent",
    "editor and owner",
    "[user, group#member] but not blocked",
    "(owner or editor) but not blocked",
    "restricted or viewer from parent",
    "editor or (owner and viewer from parent)",
    "([user] or editor) and viewer from parent",
    "viewer from parent but not blocked",
    "[user with cond] or (editor but not restricted)",
]
CAN_EDIT = ["editor", "editor but not blocked", "owner and editor", "[user] or restricted"]
PARENT = ["[folder]", "[folder, folder with cond]"]

RELATIONS = {
    "doc": ["owner", "blocked", "editor", "restricted", "viewer", "can_edit", "parent"],
    "folder": ["owner", "viewer", "parent"],
    "group": ["member"],
}
IDS = {
    "user": ["u1", "u2", "u3", "u4"],
    "group": ["g1", "g2", "g3"],
    "folder": ["f1", "f2", "f3"],
    "doc": ["d1", "d2", "d3"],
}


def model_dsl(choice: dict[str, str]) -> str:
    return f"""model
  schema 1.1
type user
type group
  relations
    define member: {choice["member"]}
type folder
  relations
    define owner: [user]
    define parent: {choice["folder_parent"]}
    define viewer: {choice["folder_viewer"]}
type doc
  relations
    define parent: {choice["doc_parent"]}
    define owner: [user, group#member]
    define blocked: [user, group#member]
    define restricted: {choice["restricted"]}
    define editor: {choice["editor"]}
    define viewer: {choice["doc_viewer"]}
    define can_edit: {choice["can_edit"]}
condition cond(x: int, limit: int) {{
  x < limit
}}
"""


def _condition_context(draw: Any) -> dict[str, int] | None:
    return draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries({"limit": st.integers(0, 10)}),
            st.fixed_dictionaries({"x": st.integers(0, 10), "limit": st.integers(0, 10)}),
        )
    )


def _user_for(draw: Any, restriction: dict[str, Any]) -> str:
    t = restriction["type"]
    if "wildcard" in restriction:
        return f"{t}:*"
    ident = draw(st.sampled_from(IDS[t]))
    return (
        f"{t}:{ident}#{restriction['relation']}" if restriction.get("relation") else f"{t}:{ident}"
    )


@st.composite
def cases(draw: Any, conditional_ttu: bool = False) -> dict[str, Any]:
    """One store test file's content: a model (DSL), tuples, and one test of queries.

    `conditional_ttu` lets `parent` tuples carry the condition (tuple to userset through a
    conditioned tuple), where the engines still disagree on when a missing parameter is an error.
    """
    parents = PARENT if conditional_ttu else PARENT[:1]
    choice = {
        "member": draw(st.sampled_from(MEMBER)),
        "editor": draw(st.sampled_from(EDITOR)),
        "restricted": draw(st.sampled_from(RESTRICTED)),
        "folder_viewer": draw(st.sampled_from(FOLDER_VIEWER)),
        "doc_viewer": draw(st.sampled_from(DOC_VIEWER)),
        "can_edit": draw(st.sampled_from(CAN_EDIT)),
        "folder_parent": draw(st.sampled_from(parents)),
        "doc_parent": draw(st.sampled_from(parents)),
    }
    dsl = model_dsl(choice)
    model = dsl_to_json(dsl)
    directs: list[tuple[str, str, dict[str, Any]]] = []
    for td in model["type_definitions"]:
        for relation, meta in ((td.get("metadata") or {}).get("relations") or {}).items():
            for restriction in meta.get("directly_related_user_types") or []:
                directs.append((td["type"], relation, restriction))
    tuples: dict[tuple[str, str, str], dict[str, Any]] = {}
    for _ in range(draw(st.integers(3, 30))):
        obj_type, relation, restriction = draw(st.sampled_from(directs))
        user = _user_for(draw, restriction)
        obj = f"{obj_type}:{draw(st.sampled_from(IDS[obj_type]))}"
        if user in (obj, f"{obj}#{relation}"):
            continue  # a tuple OpenFGA calls implicit (or a folder its own parent)
        entry: dict[str, Any] = {"user": user, "relation": relation, "object": obj}
        if restriction.get("condition"):
            condition: dict[str, Any] = {"name": restriction["condition"]}
            ctx = _condition_context(draw)
            if ctx:
                condition["context"] = ctx
            entry["condition"] = condition
        tuples.setdefault((obj, relation, user), entry)

    def query_context() -> dict[str, int] | None:
        return draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries({"x": st.integers(0, 10)}),
                st.fixed_dictionaries({"x": st.integers(0, 10), "limit": st.integers(0, 10)}),
            )
        )

    queried_users = [f"user:{i}" for i in IDS["user"]] + ["group:g1#member", "user:*"]
    checks, seen = [], set()
    for _ in range(draw(st.integers(3, 12))):
        obj_type = draw(st.sampled_from(["doc", "folder"]))
        relation = draw(st.sampled_from([r for r in RELATIONS[obj_type] if r != "parent"]))
        user = draw(st.sampled_from(queried_users))
        obj = f"{obj_type}:{draw(st.sampled_from(IDS[obj_type]))}"
        ctx = query_context()
        key = (user, obj, relation, json.dumps(ctx, sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        entry = {"user": user, "object": obj, "assertions": {relation: False}}
        if ctx:
            entry["context"] = ctx
        checks.append(entry)
    list_objects = []
    for _ in range(draw(st.integers(1, 4))):
        obj_type = draw(st.sampled_from(["doc", "folder"]))
        relation = draw(st.sampled_from([r for r in RELATIONS[obj_type] if r != "parent"]))
        entry = {
            "user": draw(st.sampled_from(queried_users[:4])),
            "type": obj_type,
            "assertions": {relation: []},
        }
        ctx = query_context()
        if ctx:
            entry["context"] = ctx
        list_objects.append(entry)
    list_users = []
    for _ in range(draw(st.integers(0, 3))):
        obj_type = draw(st.sampled_from(["doc", "folder"]))
        relation = draw(st.sampled_from([r for r in RELATIONS[obj_type] if r != "parent"]))
        flt = draw(st.sampled_from([{"type": "user"}, {"type": "group", "relation": "member"}]))
        entry = {
            "object": f"{obj_type}:{draw(st.sampled_from(IDS[obj_type]))}",
            "user_filter": [flt],
            "assertions": {relation: {"users": []}},
        }
        ctx = query_context()
        if ctx:
            entry["context"] = ctx
        list_users.append(entry)
    return {
        "name": "differential",
        "model": dsl,
        "tuples": list(tuples.values()),
        "tests": [
            {
                "name": "generated",
                "check": checks,
                "list_objects": list_objects,
                "list_users": list_users,
            }
        ],
    }


def write_case(case: dict[str, Any], directory: Path) -> Path:
    path = directory / "case.fga.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


Answer = tuple[str, Any]  # ("ok", value) or ("error", None)


def _key(kind: str, request: dict[str, Any]) -> str:
    req = {k: v for k, v in request.items() if k not in ("contextual_tuples",)}
    if kind == "list_users":
        obj = req["object"]
        req["object"] = f"{obj['type']}:{obj['id']}"
        req["user_filters"] = [
            f["type"] + (f"#{f['relation']}" if f.get("relation") else "")
            for f in req["user_filters"]
        ]
    return kind + json.dumps(req, sort_keys=True)


def _answer(kind: str, got: Any, error: Any) -> Answer:
    # the CLI's verbose JSON renders a Go error as `{}`: present, even when empty
    if error is not None:
        return ("error", None)
    if kind == "check":
        return ("ok", got)
    if kind == "list_users":
        users = (got or {}).get("users")
        return ("ok", sorted(users or []))
    return ("ok", sorted(got or []))


def openfga_answers(binary: str, path: Path) -> dict[str, Answer]:
    out = subprocess.run(
        [binary, "model", "test", "--tests", str(path), "--verbose", "--suppress-summary"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    start = out.stdout.find("[")
    if start < 0:
        raise AssertionError(f"fga model test gave no JSON: {out.stdout}\n{out.stderr}")
    results = json.loads(out.stdout[start:])
    answers: dict[str, Answer] = {}
    for test in results:
        for kind, field in (
            ("check", "check_results"),
            ("list_objects", "list_objects_results"),
            ("list_users", "list_users_results"),
        ):
            for r in test.get(field) or []:
                answers[_key(kind, r["request"])] = _answer(kind, r["got"], r["error"])
    return answers


def engine_answers(path: Path) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    for test in storetest.run_file(path):
        assert test.error is None, test.error
        for r in test.results:
            got = {"users": r.got} if r.kind == "list_users" and r.got is not None else r.got
            answers[_key(r.kind, r.request)] = _answer(r.kind, got, r.error)
    return answers


def compare(ours: dict[str, Answer], theirs: dict[str, Answer]) -> list[str]:
    """Every query whose answers differ, described."""
    problems = [f"only one side answered {k}" for k in sorted(set(ours) ^ set(theirs))]
    for key in sorted(set(ours) & set(theirs)):
        if ours[key] != theirs[key]:
            problems.append(f"{key}: embedded={ours[key]} openfga={theirs[key]}")
    return problems
