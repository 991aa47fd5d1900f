"""Refresh tokens: rotation, reuse detection, down-scoping, expiry, revocation (RFC 7009)."""

from __future__ import annotations

import pytest

from .idp_helpers import (
    Clock,
    agent_auth,
    claims_of,
    cli_id,
    http_client,
    make_provider,
    sign_in,
    tokens_for,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def idp(tmp_path, clock):
    return make_provider(tmp_path, clock)


async def _refresh(http, token, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": cli_id(), **extra}
    return await http.post("/oauth/token", data=data)


async def test_rotation_and_reuse_detection(idp):
    provider, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        first = await tokens_for(http)
        second = await _refresh(http, first["refresh_token"])
        body = second.json()
        reused = await _refresh(http, first["refresh_token"])
        # the reuse revoked the whole family: the token issued by the rotation is dead too
        after_reuse = await _refresh(http, body["refresh_token"])
    assert second.status_code == 200
    assert body["refresh_token"] != first["refresh_token"]
    assert body["id_token"] and body["access_token"] != first["access_token"]
    _, claims = claims_of(body["access_token"], provider)
    _, original = claims_of(first["access_token"], provider)
    assert claims["sub"] == original["sub"] and claims["auth_time"] == original["auth_time"]
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert after_reuse.status_code == 400 and after_reuse.json()["error"] == "invalid_grant"


async def test_narrower_scope_narrows_only_the_access_token(idp):
    provider, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        first = await tokens_for(http)
        narrow = (
            await _refresh(http, first["refresh_token"], scope="openid offline_access")
        ).json()
        full = (await _refresh(http, narrow["refresh_token"])).json()
        wider = await _refresh(http, full["refresh_token"], scope="openid create:gist")
    assert narrow["scope"] == "openid offline_access"
    assert claims_of(narrow["access_token"], provider)[1]["scope"] == "openid offline_access"
    assert full["scope"] == "openid profile email offline_access"
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


async def test_refresh_token_of_another_client(idp):
    _, app = idp
    agent_id, secret = agent_auth()
    async with http_client(app) as http:
        await sign_in(http)
        first = await tokens_for(http)
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
            auth=(agent_id, secret),
        )
        still_good = await _refresh(http, first["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert still_good.status_code == 200


async def test_expired_refresh_token(tmp_path):
    clock = Clock()
    _, app = make_provider(tmp_path, clock, refresh_token=60)
    async with http_client(app) as http:
        await sign_in(http)
        first = await tokens_for(http)
        clock.advance(61)
        answer = await _refresh(http, first["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_revocation(idp):
    provider, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        first = await tokens_for(http)
        revoked = await http.post(
            "/oauth/revoke", data={"token": first["refresh_token"], "client_id": cli_id()}
        )
        refresh = await _refresh(http, first["refresh_token"])
        unknown = await http.post("/oauth/revoke", data={"token": "nope", "client_id": cli_id()})
        missing = await http.post("/oauth/revoke", data={"client_id": cli_id()})
        hint = await http.post(
            "/oauth/revoke",
            data={"token": "nope", "token_type_hint": "id_token", "client_id": cli_id()},
        )
        no_client = await http.post("/oauth/revoke", data={"token": "nope"})
    assert revoked.status_code == 200
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    assert unknown.status_code == 200  # RFC 7009 2.2: an unknown token is not an error
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert hint.status_code == 400 and hint.json()["error"] == "unsupported_token_type"
    assert no_client.status_code in (400, 401) and no_client.json()["error"] == "invalid_client"
    assert provider.user_for_refresh_token(first["refresh_token"], cli_id()) is None


async def test_user_for_refresh_token(idp):
    provider, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        first = await tokens_for(http)
    user = provider.user_for_refresh_token(first["refresh_token"], cli_id())
    assert user is not None and user.email == "alice@example.com"
    assert provider.user_for_refresh_token(first["refresh_token"], "other") is None
    assert provider.user_for_refresh_token("garbage", cli_id()) is None
