"""Discovery, JWKS, and the authorization code + PKCE login, in-process and over real HTTP."""

from __future__ import annotations

import logging
import os
import stat

import httpx
import pytest
from joserfc import jwt

from auth.errors import LoginRequired
from devstack.identity.autologin import login
from devstack.identity.clients import Client
from devstack.identity.users import subject_for
from settings import get_settings

from .idp_helpers import (
    CALLBACK,
    ISSUER,
    authorize_params,
    claims_of,
    exchange,
    get_code,
    http_client,
    make_provider,
    query_of,
    sign_in,
    tokens_for,
)


@pytest.fixture
def idp(tmp_path):
    return make_provider(tmp_path)


async def test_discovery_names_auth0_paths_and_s256_only(idp):
    _provider, app = idp
    async with http_client(app) as http:
        doc = (await http.get("/.well-known/openid-configuration")).json()
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == ISSUER + "authorize"
    assert doc["token_endpoint"] == ISSUER + "oauth/token"
    assert doc["device_authorization_endpoint"] == ISSUER + "oauth/device/code"
    assert doc["userinfo_endpoint"] == ISSUER + "userinfo"
    assert doc["jwks_uri"] == ISSUER + ".well-known/jwks.json"
    assert doc["revocation_endpoint"] == ISSUER + "oauth/revoke"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    } <= set(doc["grant_types_supported"])


async def test_jwks_is_public_with_kid_and_key_persists(tmp_path):
    provider, app = make_provider(tmp_path)
    async with http_client(app) as http:
        keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["kid"] == provider.signing_key.kid
    assert key["use"] == "sig" and key["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    path = tmp_path / "devstack" / "signing_key.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, _ = make_provider(tmp_path)
    assert again.signing_key.kid == provider.signing_key.kid


async def test_pkce_login_issues_rfc9068_access_token_id_token_and_refresh(idp):
    provider, app = idp
    s = get_settings()
    async with http_client(app) as http:
        await sign_in(http)
        body = await tokens_for(http, audience=s.audience)
        info = await http.get(
            "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "openid profile email offline_access"
    assert body["refresh_token"] and "." not in body["refresh_token"]  # opaque
    header, claims = claims_of(body["access_token"], provider)
    assert header["typ"] == "at+jwt" and header["kid"] == provider.signing_key.kid
    assert claims["iss"] == ISSUER
    assert claims["sub"] == subject_for("alice@example.com")
    assert claims["sub"].startswith("auth0|alice")
    assert claims["aud"] == [s.audience, ISSUER + "userinfo"]
    assert claims["client_id"] == s.cli_client_id
    assert claims["scope"] == "openid profile email offline_access"
    assert claims["exp"] - claims["iat"] == 3600 and claims["jti"]
    # the namespaced claim an Auth0 post-login Action adds, so the API knows the email
    assert claims[s.email_claim] == "alice@example.com" and "email" not in claims
    _, id_claims = claims_of(body["id_token"], provider)
    assert id_claims["aud"] == s.cli_client_id and id_claims["iss"] == ISSUER
    assert id_claims["nonce"] == "nonce-123" and id_claims["at_hash"]
    assert id_claims["email"] == "alice@example.com" and id_claims["email_verified"] is True
    assert id_claims["name"] == "Alice Adams"
    assert info.status_code == 200
    assert info.json()["email"] == "alice@example.com"
    assert info.json()["sub"] == claims["sub"]


async def test_refresh_token_is_stored_hashed(idp, tmp_path):
    _provider, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        body = await tokens_for(http)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "devstack").glob("identity.sqlite*"))
    assert body["refresh_token"].encode() not in raw


async def test_without_offline_access_no_refresh_and_without_openid_no_id_token(idp):
    provider, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        body = await tokens_for(http, scope="openid email")
        api_only = await tokens_for(http, scope="create:gist")
    assert "refresh_token" not in body and "id_token" in body
    assert "id_token" not in api_only and "refresh_token" not in api_only
    _, claims = claims_of(api_only["access_token"], provider)
    assert claims["aud"] == get_settings().audience


async def test_signed_in_browser_gets_a_code_without_the_login_page(idp):
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        params = authorize_params()
        params.pop("_verifier")
        again = await http.get("/authorize", params=params)
        forced = await http.get("/authorize", params={**params, "prompt": "login"})
    assert again.status_code == 302 and again.headers["location"].startswith(CALLBACK)
    assert query_of(again)["state"] == "state-123"
    assert forced.status_code == 302 and "/u/login" in forced.headers["location"]


async def test_prompt_none_without_session_answers_login_required(idp):
    _, app = idp
    params = authorize_params(prompt="none")
    params.pop("_verifier")
    async with http_client(app) as http:
        answer = await http.get("/authorize", params=params)
    assert answer.status_code == 302 and answer.headers["location"].startswith(CALLBACK)
    assert query_of(answer) == {
        "error": "login_required",
        "error_description": "Login required",
        "state": "state-123",
    }


async def test_wrong_password_shows_the_form_again_and_issues_nothing(idp):
    _, app = idp
    async with http_client(app) as http:
        with pytest.raises(LoginRequired, match="refused the login"):
            await login(
                ISSUER,
                "alice@example.com",
                "wrong",
                client_id=get_settings().cli_client_id,
                http=http,
            )
        unknown = await login_page_answer(http, "mallory@example.com", "x")
    assert unknown.status_code == 401 and "Wrong email or password" in unknown.text


async def login_page_answer(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    params = authorize_params()
    params.pop("_verifier")
    page = await http.get("/authorize", params=params)
    state = query_of(page)["state"]
    return await http.post("/u/login", data={"state": state, "email": email, "password": password})


async def test_login_page_refuses_unknown_or_missing_transaction(idp):
    _, app = idp
    async with http_client(app) as http:
        missing = await http.get("/u/login")
        forged = await http.post(
            "/u/login",
            data={"state": "forged", "email": "alice@example.com", "password": "alice-password"},
        )
    assert missing.status_code == 400 and forged.status_code == 400
    assert "set-cookie" not in forged.headers


async def test_logout_ends_the_session(idp):
    provider, app = idp
    cli = provider.clients.get(get_settings().cli_client_id)
    cli.allowed_logout_urls.append("http://127.0.0.1:8000/")
    params = authorize_params(prompt="none")
    params.pop("_verifier")
    async with http_client(app) as http:
        await sign_in(http)
        assert (await http.get("/authorize", params=params)).headers["location"].count("code=") == 1
        out = await http.get("/v2/logout", params={"client_id": get_settings().cli_client_id})
        after = await http.get("/authorize", params=params)
        back = await http.get(
            "/v2/logout",
            params={
                "client_id": get_settings().cli_client_id,
                "returnTo": "http://127.0.0.1:8000/",
            },
        )
        refused = await http.get("/v2/logout", params={"returnTo": "https://evil.example.com/"})
    assert out.status_code == 200
    assert query_of(after)["error"] == "login_required"
    assert back.status_code == 302 and back.headers["location"] == "http://127.0.0.1:8000/"
    assert refused.status_code == 400


_REGISTERED = "http://127.0.0.1:8000/signed-out"


@pytest.mark.parametrize(
    "return_to",
    [
        "http://127.0.0.1:8001/signed-out",  # another loopback port
        "http://127.0.0.1:8000/",  # another path
        "http://127.0.0.1:8000/signed-out/../../evil",
        "http://127.0.0.1:8000/signed-outx",
        "http://127.0.0.1:8000.evil.example/signed-out",
        "http://127.0.0.1:8000@evil.example/signed-out",
        "http://user@127.0.0.1:8000/signed-out",
        "https://127.0.0.1:8000/signed-out",
        "//127.0.0.1:8000/signed-out",
        "javascript:alert(1)",
        "http://127.0.0.1:8000/signed-out\r\nSet-Cookie: x=1",
        "http://[::1]:8000/signed-out",
        "http://localhost:8000/signed-out",
        "http://127.0.0.1:2024/callback",  # a loopback redirect URI is not a logout URL
    ],
)
async def test_logout_return_to_accepts_only_the_clients_registered_urls(idp, return_to):
    provider, app = idp
    s = get_settings()
    provider.clients.get(s.cli_client_id).allowed_logout_urls.append(_REGISTERED)
    async with http_client(app) as http:
        await sign_in(http)
        answer = await http.get(
            "/v2/logout", params={"client_id": s.cli_client_id, "returnTo": return_to}
        )
    assert answer.status_code == 400, answer.headers.get("location")
    assert "location" not in answer.headers


async def test_logout_urls_are_per_client_and_the_query_is_not_compared(idp):
    provider, app = idp
    s = get_settings()
    provider.clients.get(s.cli_client_id).allowed_logout_urls.append(_REGISTERED)
    async with http_client(app) as http:
        with_query = await http.get(
            "/oidc/logout",
            params={"client_id": s.cli_client_id, "post_logout_redirect_uri": _REGISTERED + "?a=1"},
        )
        other_client = await http.get(
            "/v2/logout", params={"client_id": s.agent_client_id, "returnTo": _REGISTERED}
        )
        no_client = await http.get("/v2/logout", params={"returnTo": _REGISTERED})
        unknown_client = await http.get(
            "/v2/logout", params={"client_id": "nobody", "returnTo": _REGISTERED}
        )
        issuer_page = await http.get(
            "/v2/logout", params={"client_id": s.cli_client_id, "returnTo": provider.issuer}
        )
        provider.allowed_logout_urls.append(_REGISTERED)  # the tenant's list
        tenant = await http.get("/v2/logout", params={"returnTo": _REGISTERED})
    assert with_query.status_code == 302 and with_query.headers["location"] == _REGISTERED + "?a=1"
    assert other_client.status_code == 400
    assert no_client.status_code == 400 and unknown_client.status_code == 400
    assert issuer_page.status_code == 400
    assert tenant.status_code == 302 and tenant.headers["location"] == _REGISTERED


@pytest.mark.server
async def test_real_server_issuer_is_the_bound_url(devstack, alice_tokens, bob_tokens):
    async with httpx.AsyncClient() as http:
        doc = (await http.get(devstack.issuer + ".well-known/openid-configuration")).json()
        alice = await http.get(
            doc["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {alice_tokens.access_token}"},
        )
        bob = await http.get(
            doc["userinfo_endpoint"], headers={"Authorization": f"Bearer {bob_tokens.access_token}"}
        )
    assert doc["issuer"] == devstack.issuer
    assert devstack.issuer.startswith("http://127.0.0.1:") and ":9400/" not in devstack.issuer
    assert alice.json()["email"] == "alice@example.com"
    assert bob.json()["email"] == "bob@example.com"
    claims = jwt.decode(alice_tokens.access_token, devstack.provider.signing_key.key_set).claims
    assert claims["iss"] == devstack.issuer
    assert "access_token" not in repr(alice_tokens) and alice_tokens.access_token not in repr(
        alice_tokens
    )


@pytest.mark.server
async def test_agent_confidential_client_logs_in_with_its_secret(devstack):
    s = devstack.settings
    tokens = await login(
        devstack.issuer,
        "bob@example.com",
        s.bob_password.get_secret_value(),
        client_id=s.agent_client_id,
        client_secret=s.agent_client_secret.get_secret_value(),
        audience=s.audience,
    )
    claims = devstack.provider.verify_access_token(tokens.access_token)
    assert claims["client_id"] == s.agent_client_id
    assert claims["sub"] == subject_for("bob@example.com")
    with pytest.raises(LoginRequired, match="code exchange: invalid_client"):
        await login(
            devstack.issuer,
            "bob@example.com",
            s.bob_password.get_secret_value(),
            client_id=s.agent_client_id,
            client_secret="wrong-secret",
        )


async def test_key_rotation_publishes_both_keys_and_survives_restart(tmp_path):
    provider, app = make_provider(tmp_path)
    async with http_client(app) as http:
        await sign_in(http)
        before = await tokens_for(http)
        old_kid = provider.signing_key.kid
        new_kid = provider.signing_key.rotate()
        after = await tokens_for(http)
        kids = [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]
    assert new_kid != old_kid and kids == [new_kid, old_kid]
    assert claims_of(after["access_token"], provider)[0]["kid"] == new_kid
    assert provider.verify_access_token(before["access_token"]) is not None
    restarted, _ = make_provider(tmp_path)
    assert restarted.signing_key.kid == new_kid
    assert [k["kid"] for k in restarted.signing_key.public_jwks()["keys"]] == kids
    provider.signing_key.rotate(keep=1)
    assert provider.verify_access_token(before["access_token"]) is None


async def test_third_party_clients_get_consent_required(idp):
    provider, app = idp
    provider.clients.add(
        Client(
            client_id="third-party",
            name="Someone Else",
            allow_loopback_redirects=True,
            grant_types={"authorization_code"},
            first_party=False,
        )
    )
    params = authorize_params(client_id="third-party")
    params.pop("_verifier")
    async with http_client(app) as http:
        await sign_in(http)
        answer = await http.get("/authorize", params=params)
    assert query_of(answer)["error"] == "consent_required"
    assert "code" not in query_of(answer)


async def test_no_token_or_code_reaches_the_logs_even_at_debug(idp, caplog):
    caplog.set_level(logging.DEBUG)
    _provider, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        code, verifier, _ = await get_code(http)
        body = (await exchange(http, code, verifier)).json()
        refreshed = (
            await http.post(
                "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": body["refresh_token"],
                    "client_id": get_settings().cli_client_id,
                },
            )
        ).json()
    text = "\n".join(r.getMessage() for r in caplog.records)
    secrets = [code, body["access_token"], body["refresh_token"], body["id_token"]]
    secrets += [refreshed["access_token"], refreshed["refresh_token"]]
    assert not [s for s in secrets if s in text]
