"""OpenFGA's HTTP API as the devstack serves it: paths, JSON shapes, status codes, limits."""

from __future__ import annotations

import httpx

from auth.fga.store import Store
from tests.fga_api.helpers import MODEL

ULID_UNKNOWN = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def _tk(user: str, relation: str, obj: str, **extra: object) -> dict[str, object]:
    return {"user": user, "relation": relation, "object": obj, **extra}


def test_store_lifecycle(api: httpx.Client) -> None:
    created = api.post("/stores", json={"name": "my-store"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "name", "created_at", "updated_at"}
    assert len(body["id"]) == 26 and body["name"] == "my-store"

    got = api.get(f"/stores/{body['id']}")
    assert got.status_code == 200 and got.json()["name"] == "my-store"
    listed = api.get("/stores").json()
    assert [s["id"] for s in listed["stores"]] == [body["id"]]
    assert listed["continuation_token"] == ""

    assert api.delete(f"/stores/{body['id']}").status_code == 204
    gone = api.get(f"/stores/{body['id']}")
    assert gone.status_code == 404
    assert gone.json()["code"] == "store_id_not_found"


def test_list_stores_pages_and_filters_by_name(api: httpx.Client) -> None:
    ids = [api.post("/stores", json={"name": f"store-{i}"}).json()["id"] for i in range(3)]
    first = api.get("/stores", params={"page_size": 2}).json()
    assert len(first["stores"]) == 2 and first["continuation_token"]
    second = api.get(
        "/stores", params={"page_size": 2, "continuation_token": first["continuation_token"]}
    ).json()
    assert [s["id"] for s in first["stores"] + second["stores"]] == ids
    assert second["continuation_token"] == ""
    named = api.get("/stores", params={"name": "store-1"}).json()
    assert [s["id"] for s in named["stores"]] == [ids[1]]


def test_store_name_is_validated(api: httpx.Client) -> None:
    r = api.post("/stores", json={"name": "x"})
    assert r.status_code == 400
    assert r.json()["code"] == "validation_error"
    assert "CreateStoreRequest.Name" in r.json()["message"]


def test_models_are_created_listed_and_read(api: httpx.Client) -> None:
    store_id = api.post("/stores", json={"name": "models"}).json()["id"]
    r1 = api.post(f"/stores/{store_id}/authorization-models", json=MODEL)
    assert r1.status_code == 201
    m1 = r1.json()["authorization_model_id"]
    m2 = api.post(f"/stores/{store_id}/authorization-models", json=MODEL).json()[
        "authorization_model_id"
    ]
    assert len(m1) == 26 and m1 != m2
    listed = api.get(f"/stores/{store_id}/authorization-models").json()
    assert [m["id"] for m in listed["authorization_models"]] == [m2, m1]  # newest first
    latest = api.get(f"/stores/{store_id}/authorization-models", params={"page_size": 1}).json()
    assert latest["authorization_models"][0]["id"] == m2 and latest["continuation_token"]
    one = api.get(f"/stores/{store_id}/authorization-models/{m1}").json()["authorization_model"]
    assert one["id"] == m1 and one["schema_version"] == "1.1"
    assert one["type_definitions"] == MODEL["type_definitions"]
    assert one["conditions"]["weekday"]["expression"] == 'day != "sunday"'


def test_invalid_models_are_rejected(api: httpx.Client) -> None:
    store_id = api.post("/stores", json={"name": "models"}).json()["id"]
    url = f"/stores/{store_id}/authorization-models"
    empty = api.post(url, json={"schema_version": "1.1", "type_definitions": []})
    assert empty.status_code == 400
    assert empty.json()["code"] == "type_definitions_too_few_items"
    undefined = {
        "schema_version": "1.1",
        "type_definitions": [
            {
                "type": "document",
                "relations": {"viewer": {"this": {}}},
                "metadata": {
                    "relations": {"viewer": {"directly_related_user_types": [{"type": "nobody"}]}}
                },
            }
        ],
    }
    r = api.post(url, json=undefined)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_authorization_model"
    assert api.get(url).json()["authorization_models"] == []


def test_unknown_model_and_malformed_model_id(api: httpx.Client) -> None:
    store_id = api.post("/stores", json={"name": "models"}).json()["id"]
    r = api.get(f"/stores/{store_id}/authorization-models/{ULID_UNKNOWN}")
    assert r.status_code == 400
    assert r.json() == {
        "code": "authorization_model_not_found",
        "message": f"Authorization Model '{ULID_UNKNOWN}' not found",
    }
    bad = api.get(f"/stores/{store_id}/authorization-models/not-a-ulid")
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"


def test_write_read_and_delete(api: httpx.Client, store_with_model: tuple[str, str]) -> None:
    store_id, _ = store_with_model
    writes = [
        _tk("user:anne", "owner", "document:1"),
        _tk("user:bob", "viewer", "document:1", condition={"name": "weekday"}),
        _tk("group:eng#member", "viewer", "document:2"),
    ]
    r = api.post(f"/stores/{store_id}/write", json={"writes": {"tuple_keys": writes}})
    assert r.status_code == 200 and r.json() == {}

    page = api.post(f"/stores/{store_id}/read", json={"tuple_key": {"object": "document:1"}}).json()
    keys = sorted((t["key"]["user"], t["key"]["relation"]) for t in page["tuples"])
    assert keys == [("user:anne", "owner"), ("user:bob", "viewer")]
    assert all(t["timestamp"] for t in page["tuples"])
    conditioned = next(t for t in page["tuples"] if t["key"]["user"] == "user:bob")
    assert conditioned["key"]["condition"]["name"] == "weekday"
    assert page["continuation_token"] == ""

    r = api.post(
        f"/stores/{store_id}/write",
        json={"deletes": {"tuple_keys": [_tk("user:anne", "owner", "document:1")]}},
    )
    assert r.status_code == 200
    everything = api.post(f"/stores/{store_id}/read", json={}).json()["tuples"]
    assert len(everything) == 2


def test_read_pages_with_continuation_token(
    api: httpx.Client, store_with_model: tuple[str, str]
) -> None:
    store_id, _ = store_with_model
    writes = [_tk(f"user:u{i}", "owner", "document:1") for i in range(5)]
    api.post(f"/stores/{store_id}/write", json={"writes": {"tuple_keys": writes}})
    seen: list[str] = []
    token = ""
    for _ in range(5):
        body = {"tuple_key": {"object": "document:1"}, "page_size": 2}
        if token:
            body["continuation_token"] = token
        page = api.post(f"/stores/{store_id}/read", json=body).json()
        seen += [t["key"]["user"] for t in page["tuples"]]
        token = page["continuation_token"]
        if not token:
            break
    assert sorted(seen) == sorted(f"user:u{i}" for i in range(5))
    forged = api.post(f"/stores/{store_id}/read", json={"continuation_token": "bm90LWEtdG9rZW4"})
    assert forged.status_code == 400
    assert forged.json()["code"] == "invalid_continuation_token"
    bad_size = api.post(f"/stores/{store_id}/read", json={"page_size": 101})
    assert bad_size.status_code == 400 and bad_size.json()["code"] == "page_size_invalid"


def test_check_with_context_and_contextual_tuples(
    api: httpx.Client, store_with_model: tuple[str, str]
) -> None:
    store_id, model_id = store_with_model
    api.post(
        f"/stores/{store_id}/write",
        json={
            "writes": {
                "tuple_keys": [
                    _tk("user:bob", "viewer", "document:1", condition={"name": "weekday"}),
                    _tk("user:anne", "owner", "document:1"),
                    _tk("user:anne", "blocked", "document:2"),
                    _tk("user:anne", "owner", "document:2"),
                ]
            }
        },
    )

    def check(user: str, obj: str, **extra: object) -> httpx.Response:
        body = {"tuple_key": {"user": user, "relation": "viewer", "object": obj}, **extra}
        return api.post(f"/stores/{store_id}/check", json=body)

    assert check("user:anne", "document:1").json() == {"allowed": True, "resolution": ""}
    assert check("user:anne", "document:2").json()["allowed"] is False  # blocked
    assert check("user:bob", "document:1", context={"day": "monday"}).json()["allowed"] is True
    assert check("user:bob", "document:1", context={"day": "sunday"}).json()["allowed"] is False
    missing = check("user:bob", "document:1")
    assert missing.status_code == 400 and missing.json()["code"] == "validation_error"
    contextual = check(
        "user:carl",
        "document:3",
        contextual_tuples={"tuple_keys": [_tk("user:carl", "owner", "document:3")]},
        authorization_model_id=model_id,
    )
    assert contextual.json()["allowed"] is True
    # the contextual tuple was not stored
    assert check("user:carl", "document:3").json()["allowed"] is False


def test_batch_check_answers_by_correlation_id(
    api: httpx.Client, store_with_model: tuple[str, str]
) -> None:
    store_id, _ = store_with_model
    api.post(
        f"/stores/{store_id}/write",
        json={"writes": {"tuple_keys": [_tk("user:anne", "owner", "document:1")]}},
    )
    checks = [
        {"tuple_key": _tk("user:anne", "viewer", "document:1"), "correlation_id": "a"},
        {"tuple_key": _tk("user:anne", "viewer", "document:2"), "correlation_id": "b"},
        {"tuple_key": _tk("user:anne", "nope", "document:1"), "correlation_id": "c-1"},
    ]
    r = api.post(f"/stores/{store_id}/batch-check", json={"checks": checks})
    assert r.status_code == 200
    result = r.json()["result"]
    assert result["a"] == {"allowed": True}
    assert result["b"] == {"allowed": False}
    assert result["c-1"]["error"]["input_error"] == "validation_error"
    assert "nope" in result["c-1"]["error"]["message"]


def test_batch_check_limits_and_correlation_ids(
    api: httpx.Client, store_with_model: tuple[str, str]
) -> None:
    store_id, _ = store_with_model
    url = f"/stores/{store_id}/batch-check"
    item = {"tuple_key": _tk("user:anne", "viewer", "document:1")}
    too_many = [{**item, "correlation_id": str(i)} for i in range(51)]
    r = api.post(url, json={"checks": too_many})
    assert r.status_code == 400
    assert r.json() == {
        "code": "validation_error",
        "message": "batchCheck received 51 checks, the maximum allowed is 50 ",
    }
    assert api.post(url, json={"checks": too_many[:50]}).status_code == 200
    empty = api.post(url, json={"checks": []})
    assert empty.status_code == 400 and "no checks were received" in empty.json()["message"]
    dup = api.post(url, json={"checks": [{**item, "correlation_id": "x"}] * 2})
    assert dup.status_code == 400
    assert dup.json()["message"] == "received duplicate correlation id: x"
    bad_id = api.post(url, json={"checks": [{**item, "correlation_id": "no spaces allowed"}]})
    assert bad_id.status_code == 400 and "CorrelationId" in bad_id.json()["message"]


def test_list_objects_and_list_users(api: httpx.Client, store_with_model: tuple[str, str]) -> None:
    store_id, _ = store_with_model
    api.post(
        f"/stores/{store_id}/write",
        json={
            "writes": {
                "tuple_keys": [
                    _tk("user:anne", "owner", "document:1"),
                    _tk("user:anne", "viewer", "document:2"),
                    _tk("user:*", "viewer", "document:3"),
                    _tk("group:eng#member", "viewer", "document:1"),
                    _tk("user:anne", "member", "group:eng"),
                ]
            }
        },
    )
    objects = api.post(
        f"/stores/{store_id}/list-objects",
        json={"type": "document", "relation": "viewer", "user": "user:anne"},
    ).json()["objects"]
    assert sorted(objects) == ["document:1", "document:2", "document:3"]

    def users(filter_: dict[str, str]) -> list[dict[str, object]]:
        r = api.post(
            f"/stores/{store_id}/list-users",
            json={
                "object": {"type": "document", "id": "1"},
                "relation": "viewer",
                "user_filters": [filter_],
            },
        )
        assert r.status_code == 200, r.text
        return r.json()["users"]

    assert users({"type": "user"}) == [{"object": {"type": "user", "id": "anne"}}]
    assert users({"type": "group", "relation": "member"}) == [
        {"userset": {"type": "group", "id": "eng", "relation": "member"}}
    ]
    wildcard = api.post(
        f"/stores/{store_id}/list-users",
        json={
            "object": {"type": "document", "id": "3"},
            "relation": "viewer",
            "user_filters": [{"type": "user"}],
        },
    ).json()["users"]
    assert wildcard == [{"wildcard": {"type": "user"}}]


def test_list_objects_caps_results(fga_store: Store) -> None:
    from devstack.openfga_api import create_openfga_app
    from settings import get_settings
    from tests.fga_api.helpers import ServerThread

    app = create_openfga_app(get_settings(), store=fga_store, preshared_keys=[], list_max_results=3)
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as api:
        store_id = api.post("/stores", json={"name": "cap"}).json()["id"]
        api.post(f"/stores/{store_id}/authorization-models", json=MODEL)
        writes = [_tk("user:anne", "owner", f"document:{i}") for i in range(6)]
        api.post(f"/stores/{store_id}/write", json={"writes": {"tuple_keys": writes}})
        objects = api.post(
            f"/stores/{store_id}/list-objects",
            json={"type": "document", "relation": "viewer", "user": "user:anne"},
        ).json()["objects"]
        assert len(objects) == 3


def test_unknown_endpoint_and_method(api: httpx.Client) -> None:
    r = api.get("/nowhere")
    assert r.status_code == 404
    assert r.json() == {"code": "undefined_endpoint", "message": "Not Found"}
    r = api.put("/stores")
    assert r.status_code == 404 and r.json()["code"] == "unimplemented"


def test_read_changes(api: httpx.Client, store_with_model: tuple[str, str]) -> None:
    store_id, _ = store_with_model
    api.post(
        f"/stores/{store_id}/write",
        json={"writes": {"tuple_keys": [_tk("user:anne", "owner", "document:1")]}},
    )
    api.post(
        f"/stores/{store_id}/write",
        json={"deletes": {"tuple_keys": [_tk("user:anne", "owner", "document:1")]}},
    )
    changes = api.get(f"/stores/{store_id}/changes", params={"type": "document"}).json()
    assert [c["operation"] for c in changes["changes"]] == [
        "TUPLE_OPERATION_WRITE",
        "TUPLE_OPERATION_DELETE",
    ]
    assert changes["changes"][0]["tuple_key"]["user"] == "user:anne"
    later = api.get(
        f"/stores/{store_id}/changes", params={"continuation_token": changes["continuation_token"]}
    ).json()
    assert later["changes"] == []


def test_write_conflict_options_ignore(
    api: httpx.Client, store_with_model: tuple[str, str]
) -> None:
    store_id, _ = store_with_model
    key = _tk("user:anne", "owner", "document:1")
    api.post(f"/stores/{store_id}/write", json={"writes": {"tuple_keys": [key]}})
    again = api.post(
        f"/stores/{store_id}/write",
        json={"writes": {"tuple_keys": [key], "on_duplicate": "ignore"}},
    )
    assert again.status_code == 200
    missing = api.post(
        f"/stores/{store_id}/write",
        json={
            "deletes": {
                "tuple_keys": [_tk("user:nobody", "owner", "document:1")],
                "on_missing": "ignore",
            }
        },
    )
    assert missing.status_code == 200
    page = api.post(f"/stores/{store_id}/read", json={}).json()
    assert len(page["tuples"]) == 1
