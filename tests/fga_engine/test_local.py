"""`LocalFGA`: the FGAClient interface over the embedded engine, async, failing closed."""

from __future__ import annotations

import asyncio

import pytest

from auth.fga.client import CheckRequest, FGAClient, TupleKey
from auth.fga.errors import ErrorCode, FGAError
from auth.fga.local import LocalFGA
from settings import get_settings
from tests.fga_engine.helpers import model_json

MODEL = """
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type document
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define viewer: ([user, user:*, group#member] or owner or viewer from parent) but not blocked
"""

TUPLES = [
    TupleKey("user:anne", "member", "group:eng"),
    TupleKey("group:eng#member", "viewer", "folder:root"),
    TupleKey("folder:root", "parent", "folder:sub"),
    TupleKey("folder:sub", "parent", "document:plan"),
    TupleKey("user:bob", "owner", "document:notes"),
    TupleKey("user:*", "viewer", "document:public"),
    TupleKey("user:carl", "blocked", "document:public"),
]


@pytest.fixture
async def fga():
    client = LocalFGA.in_memory(model_json(MODEL))
    await client.write(TUPLES)
    yield client
    await client.close()


async def test_is_an_fga_client(fga: LocalFGA) -> None:
    assert isinstance(fga, FGAClient)


async def test_check_direct_userset_ttu_wildcard_exclusion(fga: LocalFGA) -> None:
    assert await fga.check("user:anne", "viewer", "document:plan")
    assert not await fga.check("user:bob", "viewer", "document:plan")
    assert await fga.check("user:bob", "viewer", "document:notes")
    assert await fga.check("user:zoe", "viewer", "document:public")
    assert not await fga.check("user:carl", "viewer", "document:public")


async def test_contextual_tuples_count_only_for_the_request(fga: LocalFGA) -> None:
    extra = [TupleKey("user:zoe", "member", "group:eng")]
    assert await fga.check("user:zoe", "viewer", "document:plan", contextual_tuples=extra)
    assert not await fga.check("user:zoe", "viewer", "document:plan")


async def test_list_objects_and_users(fga: LocalFGA) -> None:
    assert sorted(await fga.list_objects("user:anne", "viewer", "document")) == [
        "document:plan",
        "document:public",
    ]
    assert await fga.list_users("document:plan", "viewer", ["user"]) == ["user:anne"]
    assert await fga.list_users("folder:sub", "viewer", ["group#member"]) == ["group:eng#member"]
    assert sorted(await fga.list_users("document:public", "viewer", ["user"])) == ["user:*"]


async def test_batch_check_answers_each_question_and_errors_stay_local(fga: LocalFGA) -> None:
    results = await fga.batch_check(
        [
            CheckRequest("user:anne", "viewer", "document:plan"),
            CheckRequest("user:anne", "nonsense", "document:plan"),
            CheckRequest("user:bob", "viewer", "document:plan"),
        ]
    )
    assert [r.allowed for r in results] == [True, False, False]
    assert results[0].error is None and results[2].error is None
    assert results[1].error and "2000" in results[1].error


async def test_read_and_delete(fga: LocalFGA) -> None:
    assert await fga.read(object="document:notes") == [
        TupleKey("user:bob", "owner", "document:notes")
    ]
    assert len(await fga.read()) == len(TUPLES)
    await fga.write(deletes=[TupleKey("user:bob", "owner", "document:notes")])
    assert not await fga.check("user:bob", "viewer", "document:notes")


async def test_bad_input_raises_with_openfga_codes_and_changes_nothing(fga: LocalFGA) -> None:
    with pytest.raises(FGAError) as err:
        await fga.check("user:anne", "viewer", "spreadsheet:1")
    assert err.value.code == ErrorCode.validation_error
    with pytest.raises(FGAError) as err:
        await fga.list_objects("user:anne", "viewer", "spreadsheet")
    assert err.value.code == ErrorCode.type_not_found
    with pytest.raises(FGAError) as err:
        await fga.write(
            [TupleKey("user:x", "owner", "document:1"), TupleKey("user:x", "owns", "document:1")]
        )
    assert err.value.code == ErrorCode.invalid_tuple
    with pytest.raises(FGAError) as err:
        await fga.check(
            "user:a",
            "viewer",
            "document:1",
            contextual_tuples=[TupleKey("user:a", "nope", "document:1")],
        )
    assert err.value.code == ErrorCode.invalid_tuple
    assert len(await fga.read()) == len(TUPLES)


async def test_calls_run_off_the_event_loop(fga: LocalFGA) -> None:
    answers = await asyncio.gather(
        *(fga.check("user:anne", "viewer", "document:plan") for _ in range(20))
    )
    assert all(answers)


async def test_open_uses_the_data_dir_and_reuses_the_named_store(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WARRANT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        first = LocalFGA.open()
        await first.write_model(model_json(MODEL))
        await first.write([TupleKey("user:bob", "owner", "document:x")])
        await first.close()
        again = LocalFGA.open()
        assert again.store_id == first.store_id
        assert await again.check("user:bob", "viewer", "document:x")
        await again.close()
        assert (tmp_path / "fga.sqlite3").exists()
        with pytest.raises(FGAError) as err:
            LocalFGA.open(store_id="01HZZZZZZZZZZZZZZZZZZZZZZZ")
        assert err.value.code == ErrorCode.store_id_not_found
    finally:
        get_settings.cache_clear()


async def test_a_deleted_store_answers_nothing(fga: LocalFGA) -> None:
    assert await fga.check("user:anne", "viewer", "document:plan")
    fga.store.delete_store(fga.store_id)
    with pytest.raises(FGAError) as err:
        await fga.check("user:anne", "viewer", "document:plan")
    assert err.value.code == ErrorCode.store_id_not_found


async def test_pinned_model_version_is_used(fga: LocalFGA) -> None:
    old_id = fga.store.read_model(fga.store_id)["id"]
    await fga.write_model(model_json(MODEL.replace("[user, user:*, group#member]", "[user]")))
    assert not await fga.check("user:anne", "viewer", "document:public")  # latest: no wildcard
    pinned = LocalFGA(fga.store, fga.store_id, old_id)
    assert await pinned.check("user:anne", "viewer", "document:public")
