"""/userinfo and `verify_access_token` against real and forged tokens (the fixture's minter)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.server

FORGERIES = [
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "alg_none",
    "hs256_with_public_key",
    "tampered",
    "unknown_kid",
    "garbage",
]


async def _userinfo(devstack, token: str | None, method: str = "GET") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient() as http:
        return await http.request(method, devstack.issuer + "userinfo", headers=headers)


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_tokens_get_401_invalid_token(devstack, mint_token, forgery):
    token = getattr(mint_token, forgery)()
    answer = await _userinfo(devstack, token)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert devstack.provider.verify_access_token(token) is None


async def test_minted_valid_token_is_accepted_so_the_forgeries_are_meaningful(devstack, mint_token):
    assert (await _userinfo(devstack, mint_token.valid())).status_code == 200
    assert (await _userinfo(devstack, mint_token.valid("bob"))).json()["email"] == "bob@example.com"
    # the API audience alone is not the userinfo audience
    api_only = mint_token.valid(aud=devstack.settings.audience)
    assert (await _userinfo(devstack, api_only)).status_code == 401
    assert devstack.provider.verify_access_token(api_only) is not None
    assert devstack.provider.verify_access_token(mint_token.wrong_audience()) is None


async def test_missing_or_malformed_authorization(devstack):
    for header in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        async with httpx.AsyncClient() as http:
            answer = await http.get(devstack.issuer + "userinfo", headers=header)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_token_without_openid_is_insufficient_scope(devstack, mint_token):
    answer = await _userinfo(devstack, mint_token.valid(scope="create:gist"))
    assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"


async def test_userinfo_by_post_and_real_tokens(devstack, alice_tokens):
    answer = await _userinfo(devstack, alice_tokens.access_token, method="POST")
    assert answer.status_code == 200
    assert answer.json()["name"] == "Alice Adams"
    assert alice_tokens.refresh_token and alice_tokens.id_token


async def test_id_token_is_not_an_access_token(devstack, alice_tokens):
    answer = await _userinfo(devstack, alice_tokens.id_token)
    assert answer.status_code == 401
