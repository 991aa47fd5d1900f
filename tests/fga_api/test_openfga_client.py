"""The production path end to end: Warrant's `OpenFGA` client (openfga-sdk) against the
devstack's OpenFGA API served by uvicorn, and every way that path can fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from auth.errors import ProviderUnavailable
from auth.fga.client import CheckRequest, FGAClient, TupleKey
from auth.fga.errors import ErrorCode, FGAError
from auth.fga.openfga_client import OpenFGA
from auth.fga.store import Store
from devstack.openfga_api import create_openfga_app
from settings import get_settings
from tests.fga_api.helpers import MODEL, ServerThread, free_port

TOKEN = "preshared-key-for-tests"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerThread, str, str]]:
    """The API with one store and model; yields (server, store id, model id)."""
    store = Store(tmp_path / "fga.sqlite3")
    store_id = store.create_store("client-tests")
    model_id = store.write_model(store_id, MODEL)
    app = create_openfga_app(get_settings(), store=store, preshared_keys=[])
    with ServerThread(app) as srv:
        yield srv, store_id, model_id
    store.close()


@pytest.fixture
async def client(server: tuple[ServerThread, str, str]) -> AsyncIterator[OpenFGA]:
    srv, store_id, model_id = server
    fga = OpenFGA(srv.url, store_id, model_id, timeout_seconds=5)
    yield fga
    await fga.close()


async def test_is_an_fga_client(client: OpenFGA) -> None:
    assert isinstance(client, FGAClient)


async def test_write_check_read_delete(client: OpenFGA) -> None:
    await client.write(
        [
            TupleKey("user:anne", "owner", "document:1"),
            TupleKey("user:bob", "viewer", "document:1", "weekday", {"day": "monday"}),
        ]
    )
    assert await client.check("user:anne", "viewer", "document:1") is True
    assert await client.check("user:bob", "viewer", "document:1") is True
    assert await client.check("user:carl", "viewer", "document:1") is False
    tuples = await client.read(object="document:1")
    assert {(t.user, t.relation) for t in tuples} == {
        ("user:anne", "owner"),
        ("user:bob", "viewer"),
    }
    bob = next(t for t in tuples if t.user == "user:bob")
    assert bob.condition_name == "weekday" and bob.condition_context == {"day": "monday"}
    await client.write(deletes=[TupleKey("user:anne", "owner", "document:1")])
    assert await client.check("user:anne", "viewer", "document:1") is False


async def test_context_and_contextual_tuples(client: OpenFGA) -> None:
    await client.write([TupleKey("user:bob", "viewer", "document:1", "weekday")])
    assert await client.check("user:bob", "viewer", "document:1", context={"day": "tuesday"})
    assert not await client.check("user:bob", "viewer", "document:1", context={"day": "sunday"})
    assert await client.check(
        "user:dan",
        "viewer",
        "document:7",
        contextual_tuples=[TupleKey("user:dan", "owner", "document:7")],
    )
    assert await client.list_objects(
        "user:dan",
        "viewer",
        "document",
        contextual_tuples=[TupleKey("user:dan", "owner", "document:8")],
    ) == ["document:8"]


async def test_read_follows_continuation_tokens(client: OpenFGA) -> None:
    for start in range(0, 250, 100):
        await client.write(
            [
                TupleKey(f"user:u{i}", "owner", "document:big")
                for i in range(start, min(start + 100, 250))
            ]
        )
    tuples = await client.read(object="document:big")
    assert len(tuples) == 250 and len({t.user for t in tuples}) == 250


async def test_batch_check_in_chunks_keeps_order(client: OpenFGA) -> None:
    await client.write([TupleKey("user:anne", "owner", f"document:{i}") for i in range(0, 120, 3)])
    checks = [CheckRequest("user:anne", "viewer", f"document:{i}") for i in range(120)]
    results = await client.batch_check(checks)
    assert [r.allowed for r in results] == [i % 3 == 0 for i in range(120)]
    assert all(r.error is None for r in results)


async def test_batch_check_reports_errors_per_item(client: OpenFGA) -> None:
    results = await client.batch_check(
        [
            CheckRequest("user:anne", "nope", "document:1"),
            CheckRequest("user:anne", "viewer", "document:1"),
            CheckRequest("user:bob", "viewer", "document:1", context={"day": "monday"}),
        ]
    )
    assert results[0].allowed is False and results[0].error and "nope" in results[0].error
    assert results[1].allowed is False and results[1].error is None
    assert await client.batch_check([]) == []


async def test_list_objects_and_users(client: OpenFGA) -> None:
    await client.write(
        [
            TupleKey("user:anne", "member", "group:eng"),
            TupleKey("group:eng#member", "viewer", "document:1"),
            TupleKey("user:*", "viewer", "document:2"),
            TupleKey("user:anne", "owner", "document:3"),
        ]
    )
    objects = await client.list_objects("user:anne", "viewer", "document")
    assert sorted(objects) == ["document:1", "document:2", "document:3"]
    assert await client.list_users("document:1", "viewer", ["user"]) == ["user:anne"]
    assert await client.list_users("document:1", "viewer", ["group#member"]) == ["group:eng#member"]
    assert await client.list_users("document:2", "viewer", ["user"]) == ["user:*"]


async def test_invalid_requests_raise_fga_errors_with_openfga_codes(client: OpenFGA) -> None:
    with pytest.raises(FGAError) as e:
        await client.write([TupleKey("group:x#member", "owner", "document:1")])
    assert e.value.code == ErrorCode.invalid_tuple
    with pytest.raises(FGAError) as e:
        await client.write([TupleKey(f"user:u{i}", "owner", "document:1") for i in range(101)])
    assert e.value.code == ErrorCode.exceeded_entity_limit
    with pytest.raises(FGAError) as e:
        await client.list_objects("user:anne", "viewer", "folder")
    assert e.value.code == ErrorCode.type_not_found
    with pytest.raises(FGAError) as e:
        await client.write([TupleKey("user:z", "owner", "document:1")] * 2)
    assert e.value.code == ErrorCode.cannot_allow_duplicate_tuples_in_one_request
    assert await client.read(object="document:1") == []  # nothing was written


async def test_unknown_store_and_model(server: tuple[ServerThread, str, str]) -> None:
    srv, store_id, _ = server
    unknown = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    fga = OpenFGA(srv.url, unknown)
    with pytest.raises(FGAError) as e:
        await fga.check("user:anne", "viewer", "document:1")
    assert e.value.code == ErrorCode.latest_authorization_model_not_found
    await fga.close()
    fga = OpenFGA(srv.url, store_id, unknown)
    with pytest.raises(FGAError) as e:
        await fga.check("user:anne", "viewer", "document:1")
    assert e.value.code == ErrorCode.authorization_model_not_found
    await fga.close()
    bad = OpenFGA(srv.url, store_id, "not-a-ulid")
    with pytest.raises(FGAError) as e:
        await bad.check("user:anne", "viewer", "document:1")
    assert e.value.code == ErrorCode.validation_error
    await bad.close()


async def test_server_down_is_provider_unavailable() -> None:
    fga = OpenFGA(f"http://127.0.0.1:{free_port()}", "01HZZZZZZZZZZZZZZZZZZZZZZZ", max_retries=1)
    with pytest.raises(ProviderUnavailable) as e:
        await fga.check("user:anne", "viewer", "document:1")
    assert "cannot connect" in str(e.value) and "nothing was done" in str(e.value)
    await fga.close()


def _stub(handler) -> Starlette:  # type: ignore[no-untyped-def]
    return Starlette(routes=[Route("/{path:path}", handler, methods=["GET", "POST"])])


async def test_timeout_is_provider_unavailable() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(3)
        return JSONResponse({"allowed": True})

    with ServerThread(_stub(slow)) as srv:
        fga = OpenFGA(srv.url, "01HZZZZZZZZZZZZZZZZZZZZZZZ", timeout_seconds=0.3, max_retries=0)
        with pytest.raises(ProviderUnavailable) as e:
            await fga.check("user:anne", "viewer", "document:1")
        assert "within 0.3s" in str(e.value)
        await fga.close()


async def test_5xx_is_retried_then_provider_unavailable() -> None:
    calls = 0

    async def failing(request: Request) -> Response:
        nonlocal calls
        calls += 1
        return JSONResponse({"code": "internal_error", "message": "boom"}, status_code=503)

    with ServerThread(_stub(failing)) as srv:
        fga = OpenFGA(srv.url, "01HZZZZZZZZZZZZZZZZZZZZZZZ", max_retries=2, min_wait_ms=1)
        with pytest.raises(ProviderUnavailable) as e:
            await fga.check("user:anne", "viewer", "document:1")
        assert "HTTP 503" in str(e.value)
        assert calls == 3  # the first try and two retries
        await fga.close()


async def test_retry_recovers_from_a_transient_5xx() -> None:
    calls = 0

    async def flaky(request: Request) -> Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return JSONResponse({"code": "internal_error", "message": "x"}, status_code=500)
        return JSONResponse({"allowed": True, "resolution": ""})

    with ServerThread(_stub(flaky)) as srv:
        fga = OpenFGA(srv.url, "01HZZZZZZZZZZZZZZZZZZZZZZZ", max_retries=2, min_wait_ms=1)
        assert await fga.check("user:anne", "viewer", "document:1") is True
        await fga.close()


async def test_nonsense_answer_is_provider_unavailable() -> None:
    async def nonsense(request: Request) -> Response:
        return PlainTextResponse("<html>proxy error</html>", media_type="application/json")

    with ServerThread(_stub(nonsense)) as srv:
        fga = OpenFGA(srv.url, "01HZZZZZZZZZZZZZZZZZZZZZZZ", max_retries=0)
        with pytest.raises(ProviderUnavailable):
            await fga.check("user:anne", "viewer", "document:1")
        await fga.close()


async def test_api_token(tmp_path: Path) -> None:
    store = Store(tmp_path / "fga.sqlite3")
    store_id = store.create_store("token")
    store.write_model(store_id, MODEL)
    app = create_openfga_app(get_settings(), store=store, preshared_keys=[TOKEN])
    with ServerThread(app) as srv:
        anonymous = OpenFGA(srv.url, store_id)
        with pytest.raises(ProviderUnavailable) as e:
            await anonymous.check("user:anne", "viewer", "document:1")
        assert "refused our credentials (HTTP 401)" in str(e.value)
        await anonymous.close()
        wrong = OpenFGA(srv.url, store_id, api_token="wrong-token")
        with pytest.raises(ProviderUnavailable) as e:
            await wrong.check("user:anne", "viewer", "document:1")
        assert "wrong-token" not in str(e.value) and "wrong-token" not in repr(wrong)
        await wrong.close()
        fga = OpenFGA(srv.url, store_id, api_token=TOKEN)
        assert await fga.check("user:anne", "viewer", "document:1") is False
        await fga.close()
    store.close()


async def test_client_credentials(tmp_path: Path) -> None:
    """Okta FGA's flow: the client secret is exchanged at the issuer for a bearer token."""
    seen: list[dict[str, str]] = []

    async def token(request: Request) -> Response:
        form = dict(await request.form())
        seen.append({k: str(v) for k, v in form.items()})
        if form.get("client_secret") != "s3cret":
            return JSONResponse({"error": "access_denied"}, status_code=401)
        return JSONResponse({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    issuer_app = Starlette(routes=[Route("/oauth/token", token, methods=["POST"])])
    store = Store(tmp_path / "fga.sqlite3")
    store_id = store.create_store("cc")
    store.write_model(store_id, MODEL)
    app = create_openfga_app(get_settings(), store=store, preshared_keys=[TOKEN])
    with ServerThread(issuer_app) as issuer, ServerThread(app) as srv:
        fga = OpenFGA(
            srv.url,
            store_id,
            client_id="warrant",
            client_secret="s3cret",
            api_token_issuer=issuer.url,
            api_audience="https://api.fga.example/",
        )
        await fga.write([TupleKey("user:anne", "owner", "document:1")])
        assert await fga.check("user:anne", "viewer", "document:1") is True
        await fga.close()
        assert seen[0]["grant_type"] == "client_credentials"
        assert seen[0]["audience"] == "https://api.fga.example/"
        denied = OpenFGA(
            srv.url, store_id, client_id="warrant", client_secret="bad", api_token_issuer=issuer.url
        )
        with pytest.raises(ProviderUnavailable) as e:
            await denied.check("user:anne", "viewer", "document:1")
        assert "bad" not in str(e.value).replace("unavailable", "")
        await denied.close()
    store.close()


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="store id"):
        OpenFGA("http://127.0.0.1:9402", "")
    with pytest.raises(ValueError, match="http"):
        OpenFGA("127.0.0.1:9402", "01HZZZZZZZZZZZZZZZZZZZZZZZ")
    with pytest.raises(ValueError, match="client secret"):
        OpenFGA("http://127.0.0.1:9402", "01HZZZZZZZZZZZZZZZZZZZZZZZ", client_id="x")


async def test_consistency_preference_is_sent() -> None:
    bodies: list[dict] = []

    async def record(request: Request) -> Response:
        bodies.append(await request.json())
        return JSONResponse({"allowed": False, "resolution": ""})

    with ServerThread(_stub(record)) as srv:
        fga = OpenFGA(srv.url, "01HZZZZZZZZZZZZZZZZZZZZZZZ", consistency="HIGHER_CONSISTENCY")
        assert await fga.check("user:anne", "viewer", "document:1") is False
        await fga.close()
    assert bodies[0]["consistency"] == "HIGHER_CONSISTENCY"
    assert bodies[0]["tuple_key"] == {
        "user": "user:anne",
        "relation": "viewer",
        "object": "document:1",
    }


async def test_check_answer_without_a_decision_is_provider_unavailable() -> None:
    async def empty(request: Request) -> Response:
        return JSONResponse({})

    with ServerThread(_stub(empty)) as srv:
        fga = OpenFGA(srv.url, "01HZZZZZZZZZZZZZZZZZZZZZZZ")
        with pytest.raises(ProviderUnavailable):
            await fga.check("user:anne", "viewer", "document:1")
        await fga.close()


async def test_devstack_accepts_both_consistency_preferences(
    server: tuple[ServerThread, str, str],
) -> None:
    srv, store_id, model_id = server
    for preference in ("MINIMIZE_LATENCY", "HIGHER_CONSISTENCY"):
        fga = OpenFGA(srv.url, store_id, model_id, consistency=preference)  # type: ignore[arg-type]
        await fga.write([TupleKey("user:anne", "owner", f"document:{preference}")])
        assert await fga.check("user:anne", "viewer", f"document:{preference}") is True
        await fga.close()


async def test_concurrent_writes_of_one_tuple_store_it_once(client: OpenFGA) -> None:
    """Ten clients race to write the same tuple: one wins, the others get OpenFGA's 2017."""
    key = TupleKey("user:race", "owner", "document:race")
    outcomes = await asyncio.gather(
        *(client.write([key]) for _ in range(10)), return_exceptions=True
    )
    assert sum(o is None for o in outcomes) == 1
    errors = [o for o in outcomes if o is not None]
    assert all(
        isinstance(e, FGAError) and e.code == ErrorCode.write_failed_due_to_invalid_input
        for e in errors
    )
    assert len(await client.read(object="document:race")) == 1


async def test_4xx_that_is_not_openfgas_is_provider_unavailable() -> None:
    async def proxy(request: Request) -> Response:
        return PlainTextResponse("Bad Request", status_code=400)

    with ServerThread(_stub(proxy)) as srv:
        fga = OpenFGA(srv.url, "01HZZZZZZZZZZZZZZZZZZZZZZZ", max_retries=0)
        with pytest.raises(ProviderUnavailable):
            await fga.check("user:anne", "viewer", "document:1")
        await fga.close()


@pytest.mark.parametrize("status", [400, 403, 200])
async def test_token_issuer_refusal_is_provider_unavailable(status: int) -> None:
    async def token(request: Request) -> Response:
        if status == 200:
            return PlainTextResponse("not json")
        return JSONResponse({"error": "invalid_client"}, status_code=status)

    issuer = Starlette(routes=[Route("/oauth/token", token, methods=["POST"])])
    with ServerThread(issuer) as srv:
        fga = OpenFGA(
            "http://127.0.0.1:9",
            "01HZZZZZZZZZZZZZZZZZZZZZZZ",
            client_id="cid",
            client_secret="top-secret-value",
            api_token_issuer=srv.url,
            max_retries=0,
        )
        with pytest.raises(ProviderUnavailable) as e:
            await fga.check("user:anne", "viewer", "document:1")
        assert "top-secret-value" not in str(e.value)
        await fga.close()
