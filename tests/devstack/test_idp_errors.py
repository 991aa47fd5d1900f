"""Malformed requests get the OAuth error the specs name, with the right status; never a 500."""

from __future__ import annotations

import pytest

from devstack.identity.clients import Client
from settings import get_settings

from .idp_helpers import (
    CALLBACK,
    Clock,
    agent_auth,
    authorize_params,
    basic,
    cli_id,
    exchange,
    get_code,
    http_client,
    make_provider,
    query_of,
    sign_in,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def idp(tmp_path, clock):
    return make_provider(tmp_path, clock)


def _params(**overrides):
    params = authorize_params(**overrides)
    params.pop("_verifier", None)
    return params


# /authorize: errors shown to the user (never redirected to an unverified URI) -------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"client_id": None}, "invalid_client"),
        ({"client_id": "no-such-client"}, "invalid_client"),
        ({"redirect_uri": "https://evil.example.com/callback"}, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:5000/other"}, "invalid_request"),
        ({"redirect_uri": "http://192.168.1.10:5000/callback"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"redirect_uri": 'http://127.0.0.1:1/callback"\\'}, "invalid_request"),
    ],
)
async def test_authorize_errors_without_a_trusted_redirect_are_pages(idp, overrides, expected):
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        answer = await http.get("/authorize", params=_params(**overrides))
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert expected in answer.text


# /authorize: errors redirected to the client's verified redirect URI ----------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "openid admin:everything"}, "invalid_scope"),
        ({"audience": "https://unknown-api.example.com"}, "access_denied"),
    ],
)
async def test_authorize_errors_redirect_with_state(idp, overrides, expected):
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        answer = await http.get("/authorize", params=_params(**overrides))
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(CALLBACK)
    query = query_of(answer)
    assert query["error"] == expected
    assert query["state"] == "state-123"
    assert "code" not in query


async def test_authorize_repeated_parameter_is_refused(idp):
    _, app = idp
    params = [*list(_params().items()), ("state", "second")]
    async with http_client(app) as http:
        await sign_in(http)
        answer = await http.get("/authorize", params=params)
    assert answer.status_code in (302, 400)
    assert "invalid_request" in (answer.headers.get("location", "") + answer.text)
    assert "code=" not in answer.headers.get("location", "")


async def test_agent_without_pkce_is_refused_too(idp):
    _, app = idp
    params = _params(client_id=get_settings().agent_client_id, code_challenge=None)
    params.pop("code_challenge_method")
    async with http_client(app) as http:
        await sign_in(http)
        answer = await http.get("/authorize", params=params)
    assert query_of(answer)["error"] == "invalid_request"


# /oauth/token: the authorization code grant -----------------------------------------------


async def test_wrong_or_missing_verifier(idp):
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        code, _verifier, _ = await get_code(http)
        wrong = await exchange(http, code, "x" * 50)
        code2, _, _ = await get_code(http)
        missing = await exchange(http, code2, None)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


@pytest.mark.parametrize("bad_verifier", ["x" * 50, None, "short", "y" * 129, "bad chars !" * 5])
async def test_one_failed_pkce_verification_kills_the_code(idp, bad_verifier):
    """A stolen code gets one guess: after a wrong or missing verifier, the right one fails."""
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        code, verifier, _ = await get_code(http)
        failed = await exchange(http, code, bad_verifier)
        right_too_late = await exchange(http, code, verifier)
        # a fresh code still works: the dead code is the only casualty
        code2, verifier2, _ = await get_code(http)
        fine = await exchange(http, code2, verifier2)
    assert failed.status_code == 400
    assert failed.json()["error"] in ("invalid_grant", "invalid_request")
    assert right_too_late.status_code == 400 and right_too_late.json()["error"] == "invalid_grant"
    assert "access_token" not in right_too_late.json()
    assert fine.status_code == 200 and fine.json()["access_token"]


async def test_reused_code_is_refused_and_revokes_what_it_issued(idp):
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        code, verifier, _ = await get_code(http)
        first = await exchange(http, code, verifier)
        second = await exchange(http, code, verifier)
        refresh = await http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first.json()["refresh_token"],
                "client_id": cli_id(),
            },
        )
    assert first.status_code == 200
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_expired_code(idp, clock):
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        code, verifier, _ = await get_code(http)
        clock.advance(301)
        answer = await exchange(http, code, verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_wrong_redirect_uri_at_token_endpoint(idp):
    _, app = idp
    async with http_client(app) as http:
        await sign_in(http)
        code, verifier, _ = await get_code(http)
        answer = await exchange(http, code, verifier, redirect_uri="http://127.0.0.1:1/callback")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_code_of_another_client(idp):
    _, app = idp
    agent_id, secret = agent_auth()
    async with http_client(app) as http:
        await sign_in(http)
        code, verifier, _ = await get_code(http)
        answer = await exchange(http, code, verifier, client_id=agent_id, client_secret=secret)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_missing_code(idp):
    _, app = idp
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/token", data={"grant_type": "authorization_code", "client_id": cli_id()}
        )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


# /oauth/token: client authentication and request shape ------------------------------------


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        ({}, {}, 400, "invalid_request"),
        ({"grant_type": "password", "client_id": "warrant-cli"}, {}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "client_id": "nobody"}, {}, 401, "invalid_client"),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "warrant-agent",
                "client_secret": "no",
            },
            {},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials"},
            basic("warrant-agent", "wrong"),
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, basic("nobody", "x"), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials"},
            {"Authorization": "Basic %%%"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials"},
            {"Authorization": "Basic Zm9v"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "warrant-agent"},
            {},
            401,
            "invalid_client",
        ),
        # a public client cannot authenticate for a confidential-only grant
        (
            {"grant_type": "client_credentials", "client_id": "warrant-cli"},
            {},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "scope": "root"},
            basic("warrant-agent", "warrant-agent-secret"),
            400,
            "invalid_scope",
        ),
        (
            {"grant_type": "client_credentials", "audience": "https://nope"},
            basic("warrant-agent", "warrant-agent-secret"),
            403,
            "access_denied",
        ),
        (
            {"grant_type": "refresh_token", "refresh_token": "nope"},
            basic("warrant-agent", "warrant-agent-secret"),
            400,
            "invalid_grant",
        ),
        (
            {"grant_type": "refresh_token"},
            basic("warrant-agent", "warrant-agent-secret"),
            400,
            "invalid_request",
        ),
    ],
)
async def test_token_endpoint_errors(idp, data, headers, status, error):
    _, app = idp
    async with http_client(app) as http:
        answer = await http.post("/oauth/token", data=data, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert answer.headers["cache-control"] == "no-store"
    if status == 401 and "Authorization" in headers:
        assert answer.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'["a"]', "application/json"),
        (b'{"grant_type": {"x": 1}}', "application/json"),
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
            "multipart/form-data; boundary=b",
        ),
        (b"grant_type=client_credentials&" + b"a" * 70_000, "application/x-www-form-urlencoded"),
        (
            b"grant_type=client_credentials&grant_type=authorization_code",
            "application/x-www-form-urlencoded",
        ),
        (b"=&&=&%%%", "application/x-www-form-urlencoded"),
    ],
)
async def test_malformed_bodies_are_invalid_request(idp, content, content_type):
    _, app = idp
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/token", content=content, headers={"Content-Type": content_type}
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] in ("invalid_request",)


async def test_json_body_is_accepted_as_auth0_does(idp):
    provider, app = idp
    agent_id, secret = agent_auth()
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": agent_id,
                "client_secret": secret,
            },
        )
    assert answer.status_code == 200, answer.text
    claims = provider.verify_access_token(answer.json()["access_token"])
    assert claims["sub"] == f"{agent_id}@clients" and claims["gty"] == "client-credentials"
    assert claims["aud"] == get_settings().audience
    assert "refresh_token" not in answer.json() and "id_token" not in answer.json()


async def test_wrong_methods_are_not_server_errors(idp):
    _, app = idp
    async with http_client(app) as http:
        answers = [
            await http.get("/oauth/token"),
            await http.get("/oauth/device/code"),
            await http.put("/authorize"),
            await http.delete("/userinfo"),
        ]
    assert all(a.status_code == 405 for a in answers)


async def test_a_client_without_the_grant_type_is_unauthorized(idp):
    provider, app = idp
    provider.clients.add(
        Client(client_id="limited", name="Limited", client_secret="s3cret", grant_types=set())
    )
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic("limited", "s3cret"),
        )
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"
