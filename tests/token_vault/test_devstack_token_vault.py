"""Token Vault end to end on the devstack: connect at the provider, exchange, call the local GitHub.

Real HTTP throughout: the identity provider (Connected Accounts, the exchange grant), the local
GitHub (OAuth, search, revocation) and `auth.token_vault.TokenVault` with the search tool.
Exchanges are counted at the provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from auth.errors import ConnectionRequired, LoginRequired
from auth.token_vault import (
    GRANT_TYPE,
    REQUESTED_TOKEN_TYPE,
    SUBJECT_TOKEN_TYPE_ACCESS,
    SUBJECT_TOKEN_TYPE_REFRESH,
    TokenVault,
    get_token_vault,
)
from devstack.identity.connected_accounts import ConnectError, connect_in_browser
from tools.base import ToolCredentials, credentials_scope
from tools.github import search_github_repositories

pytestmark = pytest.mark.server

USERS = {"alice": "alice@example.com", "bob": "bob@example.com"}


def _password(settings, user: str) -> str:
    return getattr(settings, f"{user}_password").get_secret_value()


async def _connect(devstack, user: str, scopes: str = "") -> None:
    vault = TokenVault(devstack.issuer, "unused", "unused")
    url = vault.connect_url("github", scopes.split())
    password = _password(devstack.settings, user)
    final = await connect_in_browser(
        url, email=USERS[user], password=password, github_login=user, github_password=password
    )
    assert final.endswith("/connected-accounts/done?connection=github")


def _disconnect(devstack, sub: str) -> None:
    devstack.provider.extensions["connected_accounts"].store.delete(sub, connection="github")


def _exchanges(devstack, sub: str) -> int:
    return devstack.provider.extensions["token_vault"].exchanges[sub]


def _sub(tokens) -> str:
    import base64

    payload = tokens.access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


async def _search(vault: TokenVault, tokens, query: str = "ai", scopes=()) -> str:
    async def call(token) -> str:
        with credentials_scope(ToolCredentials({"github": token.access_token})):
            result = await search_github_repositories.ainvoke({"query": query})
        if "rejected" in result:
            raise AssertionError(result)
        return result

    return await vault.run_with_token(
        call, user_id=_sub(tokens), subject_token=tokens.access_token, scopes=list(scopes)
    )


@pytest.fixture(autouse=True)
def _leave_nobody_connected(devstack):
    """The devstack is shared by the whole session: leave no GitHub connection behind."""
    from devstack.identity.users import subject_for

    yield
    store = devstack.provider.extensions["connected_accounts"].store
    for email in ("alice@example.com", "bob@example.com"):
        store.delete(subject_for(email), connection="github")
    get_token_vault().clear()


@pytest.fixture
def vault(use_devstack) -> TokenVault:
    vault = get_token_vault()
    vault.clear()
    return vault


def test_discovery_and_client_registration(devstack) -> None:
    doc = httpx.get(devstack.issuer + ".well-known/openid-configuration").json()
    assert GRANT_TYPE in doc["grant_types_supported"]
    agent = devstack.provider.clients.get(devstack.settings.agent_client_id)
    cli = devstack.provider.clients.get(devstack.settings.cli_client_id)
    assert agent.check_grant_type(GRANT_TYPE) and not cli.check_grant_type(GRANT_TYPE)


async def test_never_connected_asks_to_connect_at_the_provider(devstack, vault, bob_tokens) -> None:
    _disconnect(devstack, _sub(bob_tokens))
    with pytest.raises(ConnectionRequired) as caught:
        await _search(vault, bob_tokens)
    assert caught.value.connect_url.startswith(
        devstack.issuer + "connected-accounts/connect?connection=github"
    )


async def test_many_tool_calls_make_one_exchange_and_users_never_share(
    devstack, vault, alice_tokens, bob_tokens, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob = _sub(alice_tokens), _sub(bob_tokens)
    await _connect(devstack, "alice")
    await _connect(devstack, "bob")
    before = _exchanges(devstack, alice)
    results = [await _search(vault, alice_tokens, q) for q in ("ai", "rag", "cli", "ai", "db")]
    assert _exchanges(devstack, alice) - before == 1
    assert all(json.loads(r)["repositories"] for r in results[:3])

    args = {"connection": "github", "subject_token_type": SUBJECT_TOKEN_TYPE_ACCESS}
    alice_token = await vault.get_token(
        user_id=alice, subject_token=alice_tokens.access_token, **args
    )
    bob_token = await vault.get_token(user_id=bob, subject_token=bob_tokens.access_token, **args)
    assert alice_token.access_token != bob_token.access_token
    async with httpx.AsyncClient(base_url=devstack.github_url) as http:
        for token, login in ((alice_token, "alice"), (bob_token, "bob")):
            me = await http.get("/user", headers={"Authorization": f"Bearer {token.access_token}"})
            assert me.json()["login"] == login
    for secret in (alice_token.access_token, bob_token.access_token, alice_tokens.access_token):
        assert secret not in caplog.text
        assert all(secret not in r for r in results)


async def test_concurrent_first_calls_make_one_exchange(devstack, vault, alice_tokens) -> None:
    alice = _sub(alice_tokens)
    await _connect(devstack, "alice")
    before = _exchanges(devstack, alice)
    results = await asyncio.gather(*[_search(vault, alice_tokens, "agent") for _ in range(8)])
    assert _exchanges(devstack, alice) - before == 1
    assert len(set(results)) == 1


async def test_insufficient_scopes_ask_to_reconnect_with_them(
    devstack, vault, alice_tokens
) -> None:
    await _connect(devstack, "alice", scopes="read:user")
    with pytest.raises(ConnectionRequired) as caught:
        await vault.get_token(
            user_id=_sub(alice_tokens),
            subject_token=alice_tokens.access_token,
            connection="github",
            scopes=["gist"],
        )
    assert caught.value.missing_scopes == ["gist"]
    assert "scopes=gist" in caught.value.connect_url
    await _connect(devstack, "alice", scopes="gist read:user")  # reconnecting fixes it
    token = await vault.get_token(
        user_id=_sub(alice_tokens), subject_token=alice_tokens.access_token, scopes=["gist"]
    )
    assert {"gist", "read:user"} <= token.scopes


async def test_token_revoked_at_github_leads_to_reconnect(devstack, vault, alice_tokens) -> None:
    await _connect(devstack, "alice")
    token = await vault.get_token(
        user_id=_sub(alice_tokens), subject_token=alice_tokens.access_token
    )
    s = devstack.settings
    async with httpx.AsyncClient(base_url=devstack.github_url) as http:
        revoked = await http.request(
            "DELETE",
            f"/applications/{s.devstack_github_client_id}/token",
            json={"access_token": token.access_token},
            auth=(s.devstack_github_client_id, s.devstack_github_client_secret.get_secret_value()),
        )
    assert revoked.status_code == 204
    with pytest.raises(ConnectionRequired) as caught:
        await _search(vault, alice_tokens)
    assert caught.value.connection == "github"
    await _connect(devstack, "alice")
    assert json.loads(await _search(vault, alice_tokens))["repositories"]


async def test_expiry_exchanges_again(devstack, use_devstack, alice_tokens) -> None:
    await _connect(devstack, "alice")

    class Clock:
        now = 1_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    s = use_devstack
    vault = TokenVault(
        s.issuer_url, s.agent_client_id, s.agent_client_secret.get_secret_value(), clock=clock
    )
    alice = _sub(alice_tokens)
    before = _exchanges(devstack, alice)
    first = await vault.get_token(user_id=alice, subject_token=alice_tokens.access_token)
    await vault.get_token(user_id=alice, subject_token=alice_tokens.access_token)
    assert _exchanges(devstack, alice) - before == 1
    clock.now += first.expires_in(1_000.0) - 30  # inside the refresh margin
    await vault.get_token(user_id=alice, subject_token=alice_tokens.access_token)
    assert _exchanges(devstack, alice) - before == 2


async def test_refresh_token_subject_and_refused_subjects(devstack, use_devstack, login_as) -> None:
    await _connect(devstack, "alice")
    s = use_devstack
    agent_tokens = await asyncio.to_thread(login_as, "alice", client="agent")
    vault = TokenVault(s.issuer_url, s.agent_client_id, s.agent_client_secret.get_secret_value())
    token = await vault.get_token(
        user_id=_sub(agent_tokens),
        subject_token=agent_tokens.refresh_token,
        subject_token_type=SUBJECT_TOKEN_TYPE_REFRESH,
    )
    assert token.access_token.startswith("ghu_")
    with pytest.raises(LoginRequired):
        await vault.get_token(user_id="auth0|alice", subject_token="not-a-token")


async def test_public_client_and_bad_parameters_are_refused(devstack, alice_tokens) -> None:
    s = devstack.settings
    form = {
        "grant_type": GRANT_TYPE,
        "subject_token": alice_tokens.access_token,
        "subject_token_type": SUBJECT_TOKEN_TYPE_ACCESS,
        "requested_token_type": REQUESTED_TOKEN_TYPE,
        "connection": "github",
    }
    async with httpx.AsyncClient(base_url=devstack.issuer) as http:
        public = await http.post("oauth/token", data={**form, "client_id": s.cli_client_id})
        assert public.status_code in (400, 401) and public.json()["error"] in {
            "invalid_client",
            "unauthorized_client",
        }
        agent = {
            "client_id": s.agent_client_id,
            "client_secret": s.agent_client_secret.get_secret_value(),
        }
        wrong_secret = await http.post("oauth/token", data={**form, **agent, "client_secret": "x"})
        assert wrong_secret.status_code == 401
        bad_type = await http.post(
            "oauth/token", data={**form, **agent, "requested_token_type": "urn:x"}
        )
        assert bad_type.status_code == 400 and bad_type.json()["error"] == "invalid_request"
        assert alice_tokens.access_token not in bad_type.text


async def test_my_account_api_connect_and_complete(devstack, login_as, alice_tokens) -> None:
    me = devstack.issuer + "me/"
    tokens = await asyncio.to_thread(
        login_as,
        "alice",
        audience=me,
        scope="openid create:me:connected_accounts read:me:connected_accounts",
    )
    redirect_uri = "http://127.0.0.1:53682/callback"
    auth = {"Authorization": f"Bearer {tokens.access_token}"}
    async with httpx.AsyncClient(base_url=devstack.issuer) as http:
        refused = await http.post(
            "me/v1/connected-accounts/connect",
            json={"connection": "github", "redirect_uri": redirect_uri},
            headers={"Authorization": f"Bearer {alice_tokens.access_token}"},  # API audience
        )
        assert refused.status_code == 401
        evil = await http.post(
            "me/v1/connected-accounts/connect",
            json={"connection": "github", "redirect_uri": "https://evil.example/cb"},
            headers=auth,
        )
        assert evil.status_code == 400
        started = await http.post(
            "me/v1/connected-accounts/connect",
            json={
                "connection": "github",
                "scopes": ["gist"],
                "redirect_uri": redirect_uri,
                "state": "xyz",
            },
            headers=auth,
        )
        assert started.status_code == 201, started.text
        body = started.json()
        connect = f"{body['connect_uri']}?ticket={body['connect_params']['ticket']}"
    # The browser: connect URI -> GitHub consent -> provider callback -> the app's redirect URI.
    async with httpx.AsyncClient() as browser:
        response = await browser.get(connect)
        github = response.headers["location"]
        params = {k: v[0] for k, v in parse_qs(urlsplit(github).query).items()}
        password = _password(devstack.settings, "alice")
        consent = await browser.post(
            github.split("?")[0],
            data={**params, "login": "alice", "password": password, "decision": "authorize"},
        )
        back = await browser.get(consent.headers["location"])
        to_app = back.headers["location"]
    assert to_app.startswith(redirect_uri)
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_app).query).items()}
    assert query["state"] == "xyz"
    async with httpx.AsyncClient(base_url=devstack.issuer) as http:
        done = await http.post(
            "me/v1/connected-accounts/complete",
            json={
                "auth_session": body["auth_session"],
                "connect_code": query["connect_code"],
                "redirect_uri": redirect_uri,
            },
            headers=auth,
        )
        assert done.status_code == 201, done.text
        assert done.json()["connection"] == "github" and done.json()["scopes"] == ["gist"]
        listed = await http.get("me/v1/connected-accounts/accounts", headers=auth)
        assert [a["connection"] for a in listed.json()["accounts"]] == ["github"]
        again = await http.post(
            "me/v1/connected-accounts/complete",
            json={
                "auth_session": body["auth_session"],
                "connect_code": query["connect_code"],
                "redirect_uri": redirect_uri,
            },
            headers=auth,
        )
        assert again.status_code == 400


async def test_connect_page_needs_login_and_a_correct_github_password(devstack) -> None:
    url = TokenVault(devstack.issuer, "x", "y").connect_url("github", [])
    with pytest.raises(ConnectError):
        await connect_in_browser(
            url,
            email="alice@example.com",
            password=_password(devstack.settings, "alice"),
            github_login="alice",
            github_password="wrong",
        )
    async with httpx.AsyncClient() as browser:
        first = await browser.get(url)
        assert first.status_code == 302 and "/u/login" in first.headers["location"]
