"""The real server's limits in the embedded engine: OpenFGA's depth counting (25 levels answer,
deeper is 2002, a user who holds the relation nowhere is simply not allowed), breadth-first
recursion whose cost follows the graph, not its paths, deadlines that stop the work (4004 for a
check, what was found so far for list_objects) and the 1,000-result cap."""

from __future__ import annotations

import pytest

from auth.fga import engine
from auth.fga.engine.check import CheckResolver
from auth.fga.engine.reader import RequestReader
from auth.fga.errors import ErrorCode, FGAError
from tests.fga_engine.helpers import store_with, tk

MODEL = """model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
    define blocked: [user]
    define allowed: member but not blocked
type folder
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
"""

# member -> m2 -> member ...: no relation reaches itself directly, so OpenFGA resolves it with
# its default (depth-first, cycle-flagging) strategy
MUTUAL = """model
  schema 1.1
type user
type group
  relations
    define member: [user, group#m2]
    define m2: [user, group#member]
"""


def _chain(n: int) -> list:
    tuples = [tk(f"group:g{i + 1}#member", "member", f"group:g{i}") for i in range(n)]
    tuples += [tk(f"folder:f{i + 1}", "parent", f"folder:f{i}") for i in range(n)]
    tuples += [tk("user:in", "member", f"group:g{n}"), tk("user:in", "viewer", f"folder:f{n}")]
    return tuples


def _check(dsl: str, tuples: list, user: str, relation: str, obj: str, **kw) -> bool:
    store, sid, mid = store_with(dsl, tuples)
    return engine.check(store.typesystem(sid, mid), store.source(sid), user, relation, obj, **kw)


@pytest.mark.parametrize("relation,obj", [("member", "group:g0"), ("viewer", "folder:f0")])
def test_a_chain_of_25_answers_and_26_is_too_deep(relation: str, obj: str) -> None:
    assert _check(MODEL, _chain(25), "user:in", relation, obj) is True
    with pytest.raises(FGAError) as e:
        _check(MODEL, _chain(26), "user:in", relation, obj)
    assert e.value.code == ErrorCode.authorization_model_resolution_too_complex


@pytest.mark.parametrize("relation,obj", [("member", "group:g0"), ("viewer", "folder:f0")])
def test_a_user_who_holds_the_relation_nowhere_is_not_allowed_at_any_depth(
    relation: str, obj: str
) -> None:
    assert _check(MODEL, _chain(40), "user:out", relation, obj) is False


def test_without_the_recursive_strategy_depth_25_is_already_an_error() -> None:
    tuples = [
        tk(
            f"group:g{i + 1}#{'m2' if i % 2 == 0 else 'member'}",
            "member" if i % 2 == 0 else "m2",
            f"group:g{i}",
        )
        for i in range(25)
    ]
    with pytest.raises(FGAError) as e:
        _check(MUTUAL, tuples, "user:out", "member", "group:g0")
    assert e.value.code == ErrorCode.authorization_model_resolution_too_complex


def test_a_dense_cycle_costs_the_graph_not_its_paths() -> None:
    n = 20
    tuples = [
        tk(f"group:g{j}#member", "member", f"group:g{i}")
        for i in range(n)
        for j in range(n)
        if i != j
    ]
    tuples.append(tk("user:in", "member", f"group:g{n - 1}"))
    store, sid, mid = store_with(MODEL, tuples)
    ts, source = store.typesystem(sid, mid), store.source(sid)
    for user, expected in (("user:in", True), ("user:out", False)):
        resolver = CheckResolver(ts, RequestReader(ts, source))
        assert resolver.check("group:g0", "member", user) is expected
        assert resolver.reader.query_count <= 2 * n  # each group read once
        assert resolver.dispatch_count <= n * n  # each edge followed at most once, not per path
    assert engine.check(ts, source, "user:out", "allowed", "group:g0") is False


def test_a_check_past_its_deadline_stops_with_4004() -> None:
    store, sid, mid = store_with(MODEL, _chain(10))
    ts, source = store.typesystem(sid, mid), store.source(sid)
    resolver = CheckResolver(ts, RequestReader(ts, source), deadline=0.0)
    with pytest.raises(FGAError) as e:
        resolver.check("group:g0", "member", "user:in")
    assert e.value.code == ErrorCode.deadline_exceeded and e.value.http_status == 504
    assert resolver.dispatch_count <= 1  # stopped at the first step past the deadline
    with pytest.raises(FGAError) as e:
        engine.check(ts, source, "user:in", "viewer", "folder:f0", deadline=0.0)
    assert e.value.code == ErrorCode.deadline_exceeded


def test_list_objects_answers_what_it_found_by_its_deadline() -> None:
    store, sid, mid = store_with(MODEL, _chain(5))
    ts, source = store.typesystem(sid, mid), store.source(sid)
    assert engine.list_objects(ts, source, "user:in", "viewer", "folder", deadline=0.0) == []
    found = engine.list_objects(ts, source, "user:in", "viewer", "folder")
    assert sorted(found) == [f"folder:f{i}" for i in range(6)]


def test_lists_stop_at_1000_results_by_default() -> None:
    tuples = [tk("user:in", "viewer", f"folder:f{i}") for i in range(1005)]
    store, sid, mid = store_with(MODEL, tuples)
    ts, source = store.typesystem(sid, mid), store.source(sid)
    assert engine.LIST_MAX_RESULTS == 1000
    assert len(engine.list_objects(ts, source, "user:in", "viewer", "folder")) == 1000
    assert len(engine.list_objects(ts, source, "user:in", "viewer", "folder", limit=0)) == 1005
    users = [tk(f"user:u{i}", "viewer", "folder:x") for i in range(1003)]
    store, sid, mid = store_with(MODEL, users)
    ts, source = store.typesystem(sid, mid), store.source(sid)
    assert len(engine.list_users(ts, source, "folder:x", "viewer", ["user"])) == 1000


# member and m2 resolve each other under an exclusion: OpenFGA walks them with its default
# (depth-first, cycle-flagging) strategy, and so does the engine
DENSE_EXCLUSION = """model
  schema 1.1
type user
type group
  relations
    define blocked: [user]
    define member: [user, group#m2] but not blocked
    define m2: [user, group#member]
type folder
  relations
    define blocked: [user]
    define parent: [folder]
    define viewer: ([user] or viewer from parent) but not blocked
    define editor: [user] and viewer
"""


def dense_exclusion_tuples(n: int) -> list:
    """Every group in every other one (alternately through member and m2), every folder the
    parent of every other one; `user:in` reaches the last ones, `user:bl` too but is blocked
    on g2 and f3, `user:out` is nowhere."""
    tuples = []
    for i in range(n):
        for j in range(n):
            if i != j:
                via = "m2" if (i + j) % 2 else "member"
                into = "member" if via == "m2" else "m2"
                tuples.append(tk(f"group:g{j}#{via}", into, f"group:g{i}"))
                tuples.append(tk(f"folder:f{j}", "parent", f"folder:f{i}"))
    last = n - 1
    for user in ("user:in", "user:bl"):
        tuples += [tk(user, "m2", f"group:g{last}"), tk(user, "viewer", f"folder:f{last}")]
    tuples += [tk("user:bl", "blocked", "group:g2"), tk("user:bl", "blocked", "folder:f3")]
    tuples.append(tk("user:in", "editor", "folder:f0"))
    return tuples


DENSE_EXPECTED = [
    ("user:out", "member", "group:g0", False),
    ("user:out", "m2", "group:g2", False),
    ("user:out", "viewer", "folder:f0", False),
    ("user:out", "editor", "folder:f0", False),
    ("user:in", "member", "group:g0", True),
    ("user:in", "viewer", "folder:f3", True),
    ("user:in", "editor", "folder:f0", True),
    ("user:bl", "member", "group:g2", False),
    ("user:bl", "member", "group:g0", True),
    ("user:bl", "viewer", "folder:f3", False),
    ("user:bl", "viewer", "folder:f0", True),
]


@pytest.mark.parametrize("user,relation,obj,expected", DENSE_EXPECTED)
def test_a_dense_cycle_under_exclusion_costs_the_graph_not_its_paths(
    user: str, relation: str, obj: str, expected: bool
) -> None:
    """12 fully linked groups and folders (paths up to 24 long, within the depth limit): a walk
    per path is 11! steps and only stopped at the deadline (4004); shared results make each
    sub-question cost about one walk of the graph.
    The answers are the `fga` binary's (tests/fga_api/test_differential.py compares a smaller
    one with it)."""
    n = 12
    store, sid, mid = store_with(DENSE_EXCLUSION, dense_exclusion_tuples(n))
    ts, source = store.typesystem(sid, mid), store.source(sid)
    assert not ts.memo_safe  # cycles under set operators: the case shared results must handle
    resolver = CheckResolver(ts, RequestReader(ts, source), deadline=120.0)
    assert resolver.check(obj, relation, user) is expected
    assert resolver.dispatch_count <= 4 * n * n * n
