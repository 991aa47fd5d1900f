"""The provider's federated-connection-access-token grant logic: Auth0's answers and errors."""

from __future__ import annotations

import httpx
import pytest

from devstack.github_api import create_github_app
from devstack.identity.connected_accounts import (
    ConnectedAccounts,
    ConnectedAccountStore,
    GitHubUpstream,
    UpstreamGrant,
)
from devstack.identity.token_vault import (
    NOT_FOUND,
    REQUESTED_TOKEN_TYPE,
    SUBJECT_TOKEN_TYPE_ACCESS,
    SUBJECT_TOKEN_TYPE_REFRESH,
    FederatedConnectionExchange,
)
from settings import get_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


USERS = {"alice-at": "auth0|alice", "bob-at": "auth0|bob"}


async def _resolve(token: str, token_type: str, client_id: str) -> str | None:
    return USERS.get(token) if client_id == "warrant-agent" else None


@pytest.fixture
async def grant(tmp_path):
    clock = Clock()
    s = get_settings()
    app = create_github_app(s, clock=clock, db_path=tmp_path / "gh.sqlite")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gh")
    accounts = ConnectedAccounts(
        s,
        store=ConnectedAccountStore(tmp_path / "ca.sqlite"),
        upstream=GitHubUpstream(s, http=http, base_url=lambda: "http://gh"),
        clock=clock,
    )
    yield FederatedConnectionExchange(accounts, _resolve), clock
    await http.aclose()


def _form(**changes: str) -> dict[str, str]:
    form = {
        "subject_token": "alice-at",
        "subject_token_type": SUBJECT_TOKEN_TYPE_ACCESS,
        "requested_token_type": REQUESTED_TOKEN_TYPE,
        "connection": "github",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


async def test_never_connected_is_auth0s_401(grant) -> None:
    exchange, _ = grant
    answer = await exchange.exchange("warrant-agent", _form())
    assert answer.status == 401
    assert answer.body == {
        "error": NOT_FOUND,
        "error_description": "Federated connection Refresh Token not found.",
    }


async def test_connected_user_gets_the_upstream_token(grant) -> None:
    exchange, clock = grant
    upstream = UpstreamGrant("ghu_alice", "ghr_alice", ("gist", "read:user"), clock.now + 3600)
    exchange.accounts.store.save_account("auth0|alice", "github", upstream, clock.now)
    answer = await exchange.exchange(
        "warrant-agent", _form(subject_token_type=SUBJECT_TOKEN_TYPE_REFRESH)
    )
    assert answer.status == 200
    assert answer.body == {
        "access_token": "ghu_alice",
        "expires_in": 3600,
        "scope": "gist read:user",
        "issued_token_type": REQUESTED_TOKEN_TYPE,
        "token_type": "Bearer",
    }
    assert exchange.exchanges["auth0|alice"] == 1
    bob = await exchange.exchange("warrant-agent", _form(subject_token="bob-at"))
    assert bob.status == 401  # alice's account is hers alone


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"subject_token": ""}, 400, "invalid_request"),
        (
            {"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"},
            400,
            "invalid_request",
        ),
        (
            {"requested_token_type": "urn:ietf:params:oauth:token-type:access_token"},
            400,
            "invalid_request",
        ),
        ({"connection": ""}, 400, "invalid_request"),
        ({"connection": "gitlab"}, 400, "invalid_request"),
        ({"subject_token": "forged"}, 403, "invalid_grant"),
    ],
)
async def test_bad_requests(grant, changes, status, error) -> None:
    exchange, _ = grant
    answer = await exchange.exchange("warrant-agent", _form(**changes))
    assert (answer.status, answer.body["error"]) == (status, error)
    assert answer.body["error_description"]


async def test_expired_upstream_without_working_refresh_means_reconnect(grant) -> None:
    exchange, clock = grant
    upstream = UpstreamGrant("ghu_old", "ghr_unknown_to_github", ("gist",), clock.now + 10)
    exchange.accounts.store.save_account("auth0|alice", "github", upstream, clock.now)
    answer = await exchange.exchange("warrant-agent", _form())
    assert answer.status == 401 and answer.body["error"] == NOT_FOUND
    assert exchange.accounts.store.accounts("auth0|alice") == []


async def test_github_down_during_refresh_is_a_5xx(tmp_path) -> None:
    clock = Clock()
    s = get_settings()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(down))
    accounts = ConnectedAccounts(
        s,
        store=ConnectedAccountStore(tmp_path / "ca.sqlite"),
        upstream=GitHubUpstream(s, http=http, base_url=lambda: "http://gh"),
        clock=clock,
    )
    accounts.store.save_account(
        "auth0|alice", "github", UpstreamGrant("a", "r", ("gist",), clock.now), clock.now
    )
    answer = await FederatedConnectionExchange(accounts, _resolve).exchange(
        "warrant-agent", _form()
    )
    assert answer.status == 503 and answer.body["error"] == "temporarily_unavailable"
    assert accounts.store.accounts("auth0|alice")  # a GitHub outage does not disconnect anyone
