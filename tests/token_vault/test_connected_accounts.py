"""Connected Accounts, provider side: connect, consent at GitHub, complete, refresh, revoke."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devstack.github_api import create_github_app
from devstack.identity.connected_accounts import (
    ConnectedAccounts,
    ConnectedAccountStore,
    ConnectError,
    GitHubUpstream,
)
from settings import get_settings

APP_CALLBACK = "https://app.example/connected"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def setup(tmp_path, clock):
    s = get_settings()
    app = create_github_app(s, clock=clock, db_path=tmp_path / "gh.sqlite")
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:9401"
    )
    accounts = ConnectedAccounts(
        s,
        issuer=lambda: "http://127.0.0.1:9400/",
        store=ConnectedAccountStore(tmp_path / "ca.sqlite"),
        upstream=GitHubUpstream(s, http=http, base_url=lambda: "http://127.0.0.1:9401"),
        clock=clock,
    )
    yield accounts, http, app
    await http.aclose()


async def _consent(
    http: httpx.AsyncClient,
    authorize_url: str,
    decision: str = "authorize",
    password: str = "alice-password",
) -> str:
    parts = urlsplit(authorize_url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    page = await http.get(parts.path, params=params)
    assert page.status_code == 200
    answer = await http.post(
        parts.path, data={**params, "login": "alice", "password": password, "decision": decision}
    )
    assert answer.status_code == 302
    return answer.headers["location"]


async def _connect(accounts, http, scopes=("gist",), user="auth0|alice", verifier=None):
    challenge = None
    if verifier:
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
    started = accounts.start(
        user, "github", scopes, APP_CALLBACK, "app-state", challenge, "S256" if challenge else None
    )
    to_github = accounts.redirect_to_github(started["connect_params"]["ticket"], "alice")
    back = await _consent(http, to_github)
    query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    to_app = await accounts.callback(query["state"], query.get("code"), query.get("error"))
    app_query = {k: v[0] for k, v in parse_qs(urlsplit(to_app).query).items()}
    return started, app_query


async def test_full_connect_flow_stores_the_upstream_grant(setup) -> None:
    accounts, http, _ = setup
    started, app_query = await _connect(accounts, http, scopes=("gist", "read:user"))
    assert started["connect_uri"] == "http://127.0.0.1:9400/connected-accounts/connect"
    assert started["expires_in"] > 0 and started["auth_session"]
    assert app_query["state"] == "app-state" and app_query["connect_code"]
    account = accounts.complete(
        "auth0|alice", started["auth_session"], app_query["connect_code"], APP_CALLBACK, None
    )
    body = account.as_json()
    assert body["connection"] == "github" and body["access_type"] == "offline"
    assert body["scopes"] == ["gist", "read:user"]
    grant = await accounts.access_token("auth0|alice", "github")
    assert grant is not None and grant.access_token.startswith("ghu_")
    assert "ghu_" not in repr(grant)
    user = await http.get("/user", headers={"Authorization": f"Bearer {grant.access_token}"})
    assert user.json()["login"] == "alice"
    assert await accounts.access_token("auth0|bob", "github") is None
    assert [a.connection for a in accounts.store.accounts("auth0|alice")] == ["github"]


async def test_complete_is_bound_to_user_code_redirect_and_happens_once(setup) -> None:
    accounts, http, _ = setup
    started, q = await _connect(accounts, http)
    session, code = started["auth_session"], q["connect_code"]
    for args in [
        ("auth0|bob", session, code, APP_CALLBACK),
        ("auth0|alice", session, "wrong", APP_CALLBACK),
        ("auth0|alice", session, code, "https://evil.example/cb"),
        ("auth0|alice", "nope", code, APP_CALLBACK),
    ]:
        with pytest.raises(ConnectError):
            accounts.complete(*args, None)
    accounts.complete("auth0|alice", session, code, APP_CALLBACK, None)
    with pytest.raises(ConnectError):
        accounts.complete("auth0|alice", session, code, APP_CALLBACK, None)


async def test_pkce_is_checked_at_complete(setup) -> None:
    accounts, http, _ = setup
    verifier = "v" * 50
    started, q = await _connect(accounts, http, verifier=verifier)
    with pytest.raises(ConnectError):
        accounts.complete(
            "auth0|alice", started["auth_session"], q["connect_code"], APP_CALLBACK, "x" * 50
        )
    started, q = await _connect(accounts, http, verifier=verifier)
    account = accounts.complete(
        "auth0|alice", started["auth_session"], q["connect_code"], APP_CALLBACK, verifier
    )
    assert account.connection == "github"


async def test_ticket_works_once_and_expires(setup, clock) -> None:
    accounts, _, _ = setup
    started = accounts.start("auth0|alice", "github", ("gist",), APP_CALLBACK)
    ticket = started["connect_params"]["ticket"]
    accounts.redirect_to_github(ticket)
    with pytest.raises(ConnectError, match="already used"):
        accounts.redirect_to_github(ticket)
    late = accounts.start("auth0|alice", "github", ("gist",), APP_CALLBACK)
    clock.now += 301
    with pytest.raises(ConnectError, match="expired"):
        accounts.redirect_to_github(late["connect_params"]["ticket"])
    with pytest.raises(ConnectError):
        accounts.start("auth0|alice", "gitlab", (), APP_CALLBACK)
    with pytest.raises(ConnectError):
        accounts.start("auth0|alice", "github", (), "not-a-url")


async def test_denied_consent_returns_an_error_to_the_app(setup) -> None:
    accounts, http, _ = setup
    started = accounts.start("auth0|alice", "github", ("gist",), APP_CALLBACK, "s1")
    back = await _consent(
        http, accounts.redirect_to_github(started["connect_params"]["ticket"]), decision="cancel"
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    to_app = await accounts.callback(query["state"], None, query["error"])
    app_query = parse_qs(urlsplit(to_app).query)
    assert app_query["error"] == ["access_denied"] and app_query["state"] == ["s1"]
    assert await accounts.access_token("auth0|alice", "github") is None
    with pytest.raises(ConnectError):
        await accounts.callback(query["state"], "code", None)  # no replay


async def test_expired_upstream_token_is_refreshed_at_github(setup, clock) -> None:
    accounts, http, _ = setup
    started, q = await _connect(accounts, http)
    accounts.complete("auth0|alice", started["auth_session"], q["connect_code"], APP_CALLBACK, None)
    first = await accounts.access_token("auth0|alice", "github")
    clock.now += 8 * 3600 - 100  # within five minutes of the end
    second = await accounts.access_token("auth0|alice", "github")
    assert accounts.refreshes == 1
    assert second.access_token != first.access_token and second.scopes == ("gist",)
    assert (
        await http.get("/user", headers={"Authorization": f"Bearer {second.access_token}"})
    ).status_code == 200
    third = await accounts.access_token("auth0|alice", "github")
    assert third.access_token == second.access_token and accounts.refreshes == 1


async def test_revoked_grant_disconnects_the_account(setup, clock) -> None:
    accounts, http, _ = setup
    started, q = await _connect(accounts, http)
    accounts.complete("auth0|alice", started["auth_session"], q["connect_code"], APP_CALLBACK, None)
    grant = await accounts.access_token("auth0|alice", "github")
    s = get_settings()
    revoked = await http.request(
        "DELETE",
        f"/applications/{s.devstack_github_client_id}/token",
        json={"access_token": grant.access_token},
        auth=(s.devstack_github_client_id, s.devstack_github_client_secret.get_secret_value()),
    )
    assert revoked.status_code == 204
    clock.now += 8 * 3600
    assert await accounts.access_token("auth0|alice", "github") is None
    assert accounts.store.accounts("auth0|alice") == []
