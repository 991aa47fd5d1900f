"""The store: model versions, validated atomic writes with OpenFGA's error codes, paged reads."""

from __future__ import annotations

import pytest

from auth.fga import engine
from auth.fga.errors import ErrorCode, FGAError
from auth.fga.store import Store
from tests.fga_engine.helpers import model_json, store_with, tk

MODEL = """
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user]
type document
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, user:*, group#member] or owner or viewer from parent
"""


def _store():
    return store_with(MODEL, [tk("user:anne", "owner", "document:1")])


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (tk("user:x", "viewer", "spreadsheet:1"), ErrorCode.invalid_tuple),  # unknown type
        (tk("user:x", "editor", "document:1"), ErrorCode.invalid_tuple),  # unknown relation
        (tk("robot:x", "viewer", "document:1"), ErrorCode.invalid_tuple),  # unknown user type
        (tk("folder:x", "viewer", "document:1"), ErrorCode.invalid_tuple),  # type not allowed
        (tk("group:x", "viewer", "document:1"), ErrorCode.invalid_tuple),  # object, not userset
        (tk("group:x#owner", "viewer", "document:1"), ErrorCode.invalid_tuple),  # no such userset
        (tk("user:*", "owner", "document:1"), ErrorCode.invalid_tuple),  # wildcard not allowed
        (tk("folder:*", "parent", "document:1"), ErrorCode.invalid_tuple),  # wildcard tupleset
        (tk("user:x", "viewer", "document:*"), ErrorCode.invalid_tuple),  # wildcard object
        (tk("user:x", "viewer", "document"), ErrorCode.invalid_tuple),  # malformed object
        (tk("user x", "viewer", "document:1"), ErrorCode.invalid_tuple),  # malformed user
        (tk("user:x", "", "document:1"), ErrorCode.invalid_tuple),  # empty relation
        (tk("a:b:c", "viewer", "document:1"), ErrorCode.invalid_tuple),
    ],
)
def test_invalid_tuples_are_refused_with_openfga_codes_and_nothing_is_written(bad, code) -> None:
    store, sid, _ = _store()
    before = store.read(sid)[0]
    with pytest.raises(FGAError) as err:
        store.write(sid, writes=[tk("user:ok", "owner", "document:2"), bad])
    assert err.value.code == code
    assert "Invalid tuple" in err.value.message
    assert store.read(sid)[0] == before


def test_duplicate_in_one_request_existing_tuple_and_missing_delete() -> None:
    store, sid, _ = _store()
    t = tk("user:bob", "owner", "document:2")
    with pytest.raises(FGAError) as err:
        store.write(sid, writes=[t, t])
    assert err.value.code == ErrorCode.cannot_allow_duplicate_tuples_in_one_request
    with pytest.raises(FGAError) as err:
        store.write(sid, writes=[t, tk("user:anne", "owner", "document:1")])
    assert err.value.code == ErrorCode.write_failed_due_to_invalid_input
    assert "already exists" in err.value.message
    with pytest.raises(FGAError) as err:
        store.write(sid, writes=[t], deletes=[tk("user:nobody", "owner", "document:1")])
    assert err.value.code == ErrorCode.write_failed_due_to_invalid_input
    assert "does not exist" in err.value.message
    assert store.count_tuples(sid) == 1  # each failed request left the store unchanged
    store.write(sid, writes=[t], deletes=[tk("user:anne", "owner", "document:1")])
    assert [x.user for x in store.read(sid)[0]] == ["user:bob"]


def test_implicit_tuples_are_refused() -> None:
    store, sid, _ = _store()
    with pytest.raises(FGAError) as err:
        store.write(sid, writes=[tk("group:a#member", "member", "group:a")])
    assert err.value.code == ErrorCode.validation_error
    assert "implicit" in err.value.message
    assert store.count_tuples(sid) == 1


def test_write_limits_and_empty_write() -> None:
    store, sid, _ = _store()
    many = [tk(f"user:{i}", "owner", "document:1") for i in range(101)]
    with pytest.raises(FGAError) as err:
        store.write(sid, writes=many)
    assert err.value.code == ErrorCode.exceeded_entity_limit
    with pytest.raises(FGAError) as err:
        store.write(sid)
    assert err.value.code == ErrorCode.invalid_write_input
    assert store.count_tuples(sid) == 1
    store.write(sid, writes=many[:100])
    assert store.count_tuples(sid) == 101


def test_invalid_store_and_model_ids() -> None:
    store, sid, _ = _store()
    with pytest.raises(FGAError) as err:
        store.write(sid[:-1], writes=[tk("user:a", "owner", "document:1")])
    assert err.value.code == ErrorCode.store_id_invalid_length
    with pytest.raises(FGAError) as err:
        store.get_store("01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert err.value.code == ErrorCode.store_id_not_found
    assert err.value.http_status == 404
    with pytest.raises(FGAError) as err:
        store.read_model(sid, "01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert err.value.code == ErrorCode.authorization_model_not_found
    with pytest.raises(FGAError) as err:
        store.read_model(sid, "not-a-ulid")
    assert err.value.code == ErrorCode.validation_error
    store.delete_store(store.create_store("gone"))
    assert all(s["name"] != "gone" for s in store.list_stores())
    empty = store.create_store("empty")
    with pytest.raises(FGAError) as err:
        store.read_model(empty)
    assert err.value.code == ErrorCode.latest_authorization_model_not_found
    with pytest.raises(FGAError):
        store.create_store("  ")


def test_invalid_models_are_refused() -> None:
    store, sid, _ = _store()
    with pytest.raises(FGAError) as err:
        store.write_model(sid, {"schema_version": "1.0", "type_definitions": [{"type": "user"}]})
    assert err.value.code == ErrorCode.invalid_authorization_model
    with pytest.raises(FGAError) as err:
        store.write_model(sid, {"schema_version": "1.1", "type_definitions": []})
    assert err.value.code == ErrorCode.type_definitions_too_few_items
    with pytest.raises(FGAError) as err:
        store.write_model(
            sid,
            {"schema_version": "1.1", "type_definitions": [{"type": "d", "relations": {"r": {}}}]},
        )
    assert err.value.code == ErrorCode.invalid_authorization_model
    for bad_dsl in (
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [group]\n",
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user#x]\n",
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: editor\n",
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: x from parent\n",
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define parent: [doc]\n"
        "    define viewer: nope from parent\n",
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define parent: [doc#viewer]\n"
        "    define viewer: [user] or viewer from parent\n",
    ):
        try:
            model = model_json(bad_dsl)
        except Exception:  # the transformer itself may refuse it: nothing to write then
            continue
        with pytest.raises(FGAError) as err:
            store.write_model(sid, model)
        assert err.value.code == ErrorCode.invalid_authorization_model
    assert len(store.list_models(sid)) == 1


def test_model_versions_and_tuples_a_newer_model_no_longer_allows() -> None:
    store, sid, first = store_with(MODEL, [tk("user:anne", "viewer", "document:1")])
    store.write(sid, writes=[tk("user:*", "viewer", "document:2")])
    newer = MODEL.replace("[user, user:*, group#member]", "[group#member]")
    second = store.write_model(sid, model_json(newer))
    assert [m["id"] for m in store.list_models(sid)] == [second, first]
    assert store.read_model(sid)["id"] == second
    src = store.source(sid)
    latest, old = store.typesystem(sid), store.typesystem(sid, first)
    assert engine.check(old, src, "user:anne", "viewer", "document:1")
    assert engine.check(old, src, "user:zed", "viewer", "document:2")
    assert not engine.check(latest, src, "user:anne", "viewer", "document:1")
    assert not engine.check(latest, src, "user:zed", "viewer", "document:2")
    assert engine.list_objects(latest, src, "user:anne", "viewer", "document") == []
    assert engine.list_users(latest, src, "document:1", "viewer", ["user"]) == []
    # the stored tuples are still there (a later model may allow them again)
    assert store.count_tuples(sid) == 2
    with pytest.raises(FGAError) as err:  # and new writes follow the latest model
        store.write(sid, writes=[tk("user:bob", "viewer", "document:3")])
    assert err.value.code == ErrorCode.invalid_tuple
    store.write(sid, writes=[tk("user:bob", "viewer", "document:3")], model_id=first)


def test_read_pages_filters_and_tokens() -> None:
    store, sid, _ = store_with(
        MODEL, [tk(f"user:{i}", "owner", f"document:{i % 3}") for i in range(7)]
    )
    page, token = store.read(sid, page_size=3)
    seen = list(page)
    while token:
        page, token = store.read(sid, page_size=3, continuation_token=token)
        seen.extend(page)
    assert len(seen) == 7 and len(set(seen)) == 7
    only0, _ = store.read(sid, object="document:0")
    assert {t.user for t in only0} == {"user:0", "user:3", "user:6"}
    by_user, _ = store.read(sid, object="document:", user="user:4")
    assert [t.object for t in by_user] == ["document:1"]
    for bad in ({"page_size": 0}, {"page_size": 101}, {"user": "user:1"}, {"object": "document:"}):
        with pytest.raises(FGAError):
            store.read(sid, **bad)
    with pytest.raises(FGAError) as err:
        store.read(sid, continuation_token="!!not-a-token")
    assert err.value.code == ErrorCode.invalid_continuation_token
    other = store.create_store("other")
    _, token = store.read(sid, page_size=1)
    with pytest.raises(FGAError) as err:  # a token is bound to its store
        store.read(other, continuation_token=token)
    assert err.value.code == ErrorCode.invalid_continuation_token


def test_read_changes_logs_writes_and_deletes_in_order() -> None:
    store, sid, _ = _store()
    store.write(sid, writes=[tk("user:bob", "member", "group:x_1")])
    store.write(sid, deletes=[tk("user:anne", "owner", "document:1")])
    changes, token = store.read_changes(sid, page_size=2)
    assert [c["operation"] for c in changes] == ["TUPLE_OPERATION_WRITE"] * 2
    more, token2 = store.read_changes(sid, continuation_token=token)
    assert [(c["operation"], c["tuple_key"].user) for c in more] == [
        ("TUPLE_OPERATION_DELETE", "user:anne")
    ]
    assert store.read_changes(sid, continuation_token=token2)[0] == []
    groups, _ = store.read_changes(sid, object_type="group")
    assert [c["tuple_key"].object for c in groups] == ["group:x_1"]
    assert store.read_changes(sid, object_type="grou_")[0] == []  # no LIKE wildcards
    with pytest.raises(FGAError) as err:
        store.read_changes(sid, page_size=0)
    assert err.value.code == ErrorCode.page_size_invalid


def test_file_store_persists_across_reopen(tmp_path) -> None:
    path = tmp_path / "fga.sqlite3"
    store = Store(path)
    sid = store.create_store("s")
    store.write_model(sid, model_json(MODEL))
    store.write(sid, writes=[tk("user:anne", "owner", "document:1")])
    store.close()
    again = Store(path)
    assert engine.check(
        again.typesystem(sid), again.source(sid), "user:anne", "viewer", "document:1"
    )
    again.close()


def test_bulk_load_validates_and_skips_duplicates() -> None:
    store, sid, _ = store_with(MODEL)
    rows = [tk("user:a", "owner", "document:1"), tk("user:a", "owner", "document:1")]
    assert store.bulk_load(sid, rows) == 1
    with pytest.raises(FGAError):
        store.bulk_load(sid, [tk("user:a", "nope", "document:1")])
    assert store.count_tuples(sid) == 1
