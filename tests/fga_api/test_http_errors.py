"""Bad input to the HTTP API: OpenFGA's code and message, and the store exactly as it was."""

from __future__ import annotations

import httpx
import pytest

from tests.fga_api.helpers import MODEL

UNKNOWN = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def _tk(user: str, relation: str, obj: str, **extra: object) -> dict[str, object]:
    return {"user": user, "relation": relation, "object": obj, **extra}


def _all_tuples(api: httpx.Client, store_id: str) -> list[tuple[str, str, str]]:
    out = []
    token = ""
    while True:
        body: dict[str, object] = {"page_size": 100}
        if token:
            body["continuation_token"] = token
        page = api.post(f"/stores/{store_id}/read", json=body).json()
        out += [
            (t["key"]["user"], t["key"]["relation"], t["key"]["object"]) for t in page["tuples"]
        ]
        token = page["continuation_token"]
        if not token:
            return sorted(out)


@pytest.fixture
def seeded(api: httpx.Client, store_with_model: tuple[str, str]) -> str:
    store_id, _ = store_with_model
    api.post(
        f"/stores/{store_id}/write",
        json={"writes": {"tuple_keys": [_tk("user:anne", "owner", "document:1")]}},
    )
    return store_id


BAD_WRITES = {
    "101 tuples": (
        {"writes": {"tuple_keys": [_tk(f"user:u{i}", "owner", "document:9") for i in range(101)]}},
        "exceeded_entity_limit",
        "The number of write operations exceeds the allowed limit of 100",
    ),
    "unknown type": (
        {"writes": {"tuple_keys": [_tk("user:x", "owner", "folder:1")]}},
        "invalid_tuple",
        "Invalid tuple 'folder:1#owner@user:x'. Reason: type 'folder' not found",
    ),
    "unknown relation": (
        {"writes": {"tuple_keys": [_tk("user:x", "editor", "document:1")]}},
        "invalid_tuple",
        None,
    ),
    "user type not allowed": (
        {"writes": {"tuple_keys": [_tk("group:eng#member", "owner", "document:1")]}},
        "invalid_tuple",
        None,
    ),
    "unknown condition": (
        {
            "writes": {
                "tuple_keys": [_tk("user:x", "viewer", "document:1", condition={"name": "nope"})]
            }
        },
        None,
        None,
    ),
    "existing tuple": (
        {"writes": {"tuple_keys": [_tk("user:anne", "owner", "document:1")]}},
        "write_failed_due_to_invalid_input",
        None,
    ),
    "missing delete": (
        {"deletes": {"tuple_keys": [_tk("user:nobody", "owner", "document:1")]}},
        "write_failed_due_to_invalid_input",
        None,
    ),
    "duplicate in request": (
        {"writes": {"tuple_keys": [_tk("user:z", "owner", "document:1")] * 2}},
        "cannot_allow_duplicate_tuples_in_one_request",
        "duplicate tuple in write: user: 'user:z', relation: 'owner', object: 'document:1'",
    ),
    "nothing to do": ({}, "invalid_write_input", None),
    "empty writes": ({"writes": {"tuple_keys": []}}, "validation_error", None),
    "malformed object": (
        {"writes": {"tuple_keys": [_tk("user:x", "owner", "document 1")]}},
        "object_invalid_pattern",
        None,
    ),
    "good then bad": (
        {
            "writes": {
                "tuple_keys": [
                    _tk("user:new", "owner", "document:5"),
                    _tk("user:x", "owner", "nope:1"),
                ]
            }
        },
        "invalid_tuple",
        None,
    ),
    "bad model id": (
        {
            "writes": {"tuple_keys": [_tk("user:x", "owner", "document:1")]},
            "authorization_model_id": "x",
        },
        "validation_error",
        None,
    ),
    "unknown model id": (
        {
            "writes": {"tuple_keys": [_tk("user:x", "owner", "document:1")]},
            "authorization_model_id": UNKNOWN,
        },
        "authorization_model_not_found",
        f"Authorization Model '{UNKNOWN}' not found",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_WRITES))
def test_bad_write_is_rejected_and_changes_nothing(
    api: httpx.Client, seeded: str, case: str
) -> None:
    body, code, message = BAD_WRITES[case]
    before = _all_tuples(api, seeded)
    r = api.post(f"/stores/{seeded}/write", json=body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert set(err) == {"code", "message"} and err["message"]
    if code is not None:
        assert err["code"] == code, err
    if message is not None:
        assert err["message"] == message
    assert "Traceback" not in r.text
    assert _all_tuples(api, seeded) == before


def test_malformed_json_and_non_object_body(api: httpx.Client, seeded: str) -> None:
    r = api.post(f"/stores/{seeded}/check", content=b"{not json")
    assert r.status_code == 400 and r.json()["code"] == "validation_error"
    r = api.post(f"/stores/{seeded}/check", json=[1, 2])
    assert r.status_code == 400 and r.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "path", ["check", "write", "read", "batch-check", "list-objects", "list-users"]
)
def test_invalid_store_id(api: httpx.Client, path: str) -> None:
    r = api.post(f"/stores/not-a-store/{path}", json={})
    assert r.status_code == 400
    assert r.json()["code"] == "validation_error"
    assert "StoreId" in r.json()["message"]


def test_unknown_store(api: httpx.Client) -> None:
    assert api.get(f"/stores/{UNKNOWN}").status_code == 404
    assert api.delete(f"/stores/{UNKNOWN}").json()["code"] == "store_id_not_found"
    r = api.post(
        f"/stores/{UNKNOWN}/check",
        json={"tuple_key": _tk("user:anne", "viewer", "document:1")},
    )
    assert r.status_code == 400
    assert r.json() == {
        "code": "latest_authorization_model_not_found",
        "message": f"No authorization models found for store '{UNKNOWN}'",
    }
    r = api.post(
        f"/stores/{UNKNOWN}/check",
        json={
            "tuple_key": _tk("user:anne", "viewer", "document:1"),
            "authorization_model_id": UNKNOWN,
        },
    )
    assert r.json()["code"] == "authorization_model_not_found"
    # reading an unknown store reads nothing, as in OpenFGA
    r = api.post(f"/stores/{UNKNOWN}/read", json={})
    assert r.status_code == 200 and r.json() == {"tuples": [], "continuation_token": ""}


def test_store_without_model(api: httpx.Client) -> None:
    store_id = api.post("/stores", json={"name": "empty"}).json()["id"]
    r = api.post(
        f"/stores/{store_id}/write",
        json={"writes": {"tuple_keys": [_tk("user:anne", "owner", "document:1")]}},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "latest_authorization_model_not_found"


def test_query_input_errors(api: httpx.Client, seeded: str) -> None:
    url = f"/stores/{seeded}"
    no_key = api.post(f"{url}/check", json={})
    assert no_key.json()["code"] == "tuple_key_value_not_specified"
    unknown_type = api.post(
        f"{url}/list-objects", json={"type": "folder", "relation": "viewer", "user": "user:anne"}
    )
    assert unknown_type.status_code == 400 and unknown_type.json()["code"] == "type_not_found"
    unknown_rel = api.post(
        f"{url}/list-objects", json={"type": "document", "relation": "nope", "user": "user:anne"}
    )
    assert unknown_rel.json()["code"] == "relation_not_found"
    too_many_ctx = api.post(
        f"{url}/check",
        json={
            "tuple_key": _tk("user:anne", "viewer", "document:1"),
            "contextual_tuples": {
                "tuple_keys": [_tk(f"user:u{i}", "owner", "document:1") for i in range(101)]
            },
        },
    )
    assert too_many_ctx.status_code == 400 and too_many_ctx.json()["code"] == "validation_error"
    bad_ctx_tuple = api.post(
        f"{url}/check",
        json={
            "tuple_key": _tk("user:anne", "viewer", "document:1"),
            "contextual_tuples": {"tuple_keys": [_tk("group:x#member", "owner", "document:1")]},
        },
    )
    assert bad_ctx_tuple.status_code == 400 and bad_ctx_tuple.json()["code"] == "invalid_tuple"
    context_not_object = api.post(
        f"{url}/check",
        json={"tuple_key": _tk("user:anne", "viewer", "document:1"), "context": [1]},
    )
    assert context_not_object.status_code == 400
    two_filters = api.post(
        f"{url}/list-users",
        json={
            "object": {"type": "document", "id": "1"},
            "relation": "viewer",
            "user_filters": [{"type": "user"}, {"type": "group"}],
        },
    )
    assert two_filters.status_code == 400 and two_filters.json()["code"] == "validation_error"


def test_preshared_key_authentication(fga_store) -> None:
    from devstack.openfga_api import create_openfga_app
    from settings import get_settings
    from tests.fga_api.helpers import ServerThread

    app = create_openfga_app(get_settings(), store=fga_store, preshared_keys=["k-123"])
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
        r = client.get("/stores")
        assert r.status_code == 401
        assert r.json() == {"code": "bearer_token_missing", "message": "missing bearer token"}
        r = client.get("/stores", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        ok = client.get("/stores", headers={"Authorization": "Bearer k-123"})
        assert ok.status_code == 200
        assert MODEL  # the module's model is importable alongside
