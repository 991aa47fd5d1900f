"""Conditions: CEL with OpenFGA's parameter types, context merging, and errors (as OpenFGA).

The typed-parameter answers are also checked against OpenFGA itself in
`test_openfga_agreement.py` (data/conditions.fga.yaml)."""

from __future__ import annotations

import pytest

from auth.fga import engine
from auth.fga.errors import ErrorCode, FGAError
from tests.fga_engine.helpers import store_with, tk

MODEL = """
model
  schema 1.1
type user
type document
  relations
    define viewer: [user with small, user with both]
    define editor: [user]
    define can_read: viewer or editor
condition small(x: int) {
  x < 10
}
condition both(x: int, y: int) {
  x < 10 && y > 3
}
"""


def _setup():
    return store_with(
        MODEL,
        [
            tk("user:a", "viewer", "document:1", {"name": "small", "context": {"x": 1}}),
            tk("user:b", "viewer", "document:1", {"name": "both", "context": {"x": 5}}),
            tk("user:b", "editor", "document:1"),
            tk("user:c", "viewer", "document:2", {"name": "small"}),
        ],
    )


def test_tuple_context_wins_over_request_context() -> None:
    store, sid, mid = _setup()
    ts, src = store.typesystem(sid, mid), store.source(sid)
    assert engine.check(ts, src, "user:a", "viewer", "document:1", context={"x": 100})


def test_request_context_fills_parameters_the_tuple_lacks() -> None:
    store, sid, mid = _setup()
    ts, src = store.typesystem(sid, mid), store.source(sid)
    assert engine.check(ts, src, "user:c", "viewer", "document:2", context={"x": 3})
    assert not engine.check(ts, src, "user:c", "viewer", "document:2", context={"x": 30})


def test_missing_parameter_is_a_validation_error_naming_it() -> None:
    store, sid, mid = _setup()
    ts, src = store.typesystem(sid, mid), store.source(sid)
    with pytest.raises(FGAError) as err:
        engine.check(ts, src, "user:b", "viewer", "document:1")
    assert err.value.code == ErrorCode.validation_error
    assert "[y]" in err.value.message and "document:1#viewer@user:b" in err.value.message


def test_union_branch_that_is_allowed_wins_over_a_condition_error() -> None:
    store, sid, mid = _setup()
    ts, src = store.typesystem(sid, mid), store.source(sid)
    assert engine.check(ts, src, "user:b", "can_read", "document:1")


def test_list_objects_and_list_users_fail_on_a_condition_error() -> None:
    store, sid, mid = _setup()
    ts, src = store.typesystem(sid, mid), store.source(sid)
    with pytest.raises(FGAError) as err:
        engine.list_objects(ts, src, "user:b", "can_read", "document")
    assert err.value.code == ErrorCode.validation_error
    with pytest.raises(FGAError) as err:
        engine.list_users(ts, src, "document:1", "viewer", ["user"])
    assert err.value.code == ErrorCode.validation_error
    assert engine.list_users(ts, src, "document:1", "viewer", ["user"], context={"y": 4}) == [
        "user:a",
        "user:b",
    ]


@pytest.mark.parametrize(
    "context",
    [{"x": "ten"}, {"x": 1.5}, {"x": True}, {"x": [1]}],
)
def test_a_parameter_of_the_wrong_type_is_a_validation_error(context: dict) -> None:
    store, sid, mid = _setup()
    ts, src = store.typesystem(sid, mid), store.source(sid)
    with pytest.raises(FGAError) as err:
        engine.check(ts, src, "user:c", "viewer", "document:2", context=context)
    assert err.value.code == ErrorCode.validation_error
    assert "'x'" in err.value.message


def test_context_must_be_an_object() -> None:
    store, sid, mid = _setup()
    ts, src = store.typesystem(sid, mid), store.source(sid)
    with pytest.raises(FGAError) as err:
        engine.check(ts, src, "user:a", "viewer", "document:1", context=["x"])  # type: ignore[arg-type]
    assert err.value.code == ErrorCode.validation_error


@pytest.mark.parametrize(
    ("tuple_key", "reason"),
    [
        (tk("user:z", "viewer", "document:9", {"name": "nope"}), "undefined condition"),
        (tk("user:z", "viewer", "document:9"), "condition is missing"),
        (tk("user:z", "editor", "document:9", {"name": "small"}), "invalid condition"),
        (
            tk("user:z", "viewer", "document:9", {"name": "small", "context": {"q": 1}}),
            "invalid context parameter",
        ),
        (
            tk("user:z", "viewer", "document:9", {"name": "small", "context": {"x": "a"}}),
            "failed to convert",
        ),
    ],
)
def test_writing_a_badly_conditioned_tuple_fails_and_changes_nothing(tuple_key, reason) -> None:
    store, sid, _ = _setup()
    before = store.count_tuples(sid)
    with pytest.raises(FGAError) as err:
        store.write(sid, writes=[tk("user:y", "editor", "document:9"), tuple_key])
    assert err.value.code == ErrorCode.validation_error
    assert reason in err.value.message
    assert store.count_tuples(sid) == before


def test_a_model_whose_condition_does_not_compile_is_rejected() -> None:
    store, sid, _ = _setup()
    bad = {
        "schema_version": "1.1",
        "type_definitions": [{"type": "user"}],
        "conditions": {
            "c": {
                "name": "c",
                "expression": "x <<< 1",
                "parameters": {"x": {"type_name": "TYPE_NAME_INT"}},
            }
        },
    }
    with pytest.raises(FGAError) as err:
        store.write_model(sid, bad)
    assert err.value.code == ErrorCode.invalid_authorization_model
    assert len(store.list_models(sid)) == 1


def test_ipaddress_timestamp_duration_list_and_map_parameters() -> None:
    dsl = """
model
  schema 1.1
type user
type doc
  relations
    define viewer: [user with net, user with window, user with tags]
condition net(ip: ipaddress) {
  ip.in_cidr("192.168.0.0/16")
}
condition window(now: timestamp, start: timestamp, ttl: duration) {
  now >= start && now < start + ttl
}
condition tags(wanted: string, have: list<string>, limits: map<int>) {
  wanted in have && limits[wanted] > 0
}
"""
    store, sid, mid = store_with(
        dsl,
        [
            tk("user:n", "viewer", "doc:1", {"name": "net"}),
            tk(
                "user:w",
                "viewer",
                "doc:1",
                {"name": "window", "context": {"start": "2025-01-01T00:00:00Z", "ttl": "90m"}},
            ),
            tk("user:t", "viewer", "doc:1", {"name": "tags", "context": {"have": ["a", "b"]}}),
        ],
    )
    ts, src = store.typesystem(sid, mid), store.source(sid)

    def check(user: str, ctx: dict) -> bool:
        return engine.check(ts, src, user, "viewer", "doc:1", context=ctx)

    assert check("user:n", {"ip": "192.168.4.5"})
    assert not check("user:n", {"ip": "10.0.0.1"})
    with pytest.raises(FGAError):
        check("user:n", {"ip": "not-an-ip"})
    assert check("user:w", {"now": "2025-01-01T01:00:00Z"})
    assert not check("user:w", {"now": "2025-01-01T02:00:00Z"})
    assert check("user:t", {"wanted": "a", "limits": {"a": 2}})
    assert not check("user:t", {"wanted": "c", "limits": {"c": 2}})
    assert not check("user:t", {"wanted": "b", "limits": {"b": 0}})


def test_list_users_evaluates_every_tuple_of_a_read_before_the_user_filter() -> None:
    """OpenFGA's list_users evaluates the condition of every tuple it reads on a relation that
    can lead to the filter, even a user of another type: a missing parameter there fails the
    request (found by the differential test; the engine used to skip the tuple)."""
    store, sid, mid = store_with(
        """
model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define restricted: [user with cond, group#member with cond]
    define can_edit: [user] or restricted
condition cond(x: int, limit: int) {
  x < limit
}
""",
        [
            tk("user:u2", "restricted", "doc:d2", {"name": "cond"}),
            tk("group:g1#member", "restricted", "doc:d2", {"name": "cond", "context": {"x": 1}}),
        ],
    )
    ts, src = store.typesystem(sid, mid), store.source(sid)
    with pytest.raises(FGAError) as err:
        engine.list_users(ts, src, "doc:d2", "can_edit", ["group#member"], context={"limit": 5})
    assert err.value.code == ErrorCode.validation_error
    users = engine.list_users(
        ts, src, "doc:d2", "can_edit", ["group#member"], context={"x": 1, "limit": 5}
    )
    assert users == ["group:g1#member"]
