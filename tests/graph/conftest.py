"""Fixtures for the graph tests: the local GitHub API and an identity provider speaking Auth0's
Token Vault exchange (just that grant; the full devstack provider has its own tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import auth.credentials
from auth.token_vault import GRANT_TYPE, NOT_CONNECTED, REQUESTED_TOKEN_TYPE
from devstack.github_api import create_github_app
from settings import get_settings
from tests.token_vault.helpers import github_grant, serve

CANARY_SUBJECT_TOKEN = "eyJcanary.subject-token-4b1d9e0c7f.alice-never-store-me"


@dataclass
class ExchangeProvider:
    """Scripted behaviour of the provider's federated-connection exchange, and what it saw."""

    github_token: str = field(default="", repr=False)
    connected: bool = False
    down: bool = False
    exchanges: int = 0
    subject_tokens: list[str] = field(default_factory=list, repr=False)
    url: str = ""


def _exchange_app(provider: ExchangeProvider) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        base = str(request.base_url)
        return JSONResponse({"issuer": base, "token_endpoint": f"{base}oauth/token"})

    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        provider.exchanges += 1
        provider.subject_tokens.append(str(form.get("subject_token")))
        if provider.down:
            return JSONResponse({"error": "server_error"}, status_code=503)
        if (
            form.get("grant_type") != GRANT_TYPE
            or form.get("requested_token_type") != REQUESTED_TOKEN_TYPE
            or form.get("client_secret") != get_settings().agent_client_secret.get_secret_value()
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if not provider.connected:
            return JSONResponse(
                {"error": NOT_CONNECTED, "error_description": "no connected account"},
                status_code=401,
            )
        return JSONResponse(
            {
                "access_token": provider.github_token,
                "expires_in": 3600,
                "scope": "",
                "issued_token_type": REQUESTED_TOKEN_TYPE,
                "token_type": "Bearer",
            }
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/oauth/token", token, methods=["POST"]),
        ]
    )


@pytest.fixture
def github_url(tmp_path, monkeypatch):
    app = create_github_app(get_settings(), db_path=tmp_path / "github.sqlite")
    with serve(app) as url:
        monkeypatch.setenv("WARRANT_GITHUB_API_URL", url)
        get_settings.cache_clear()
        yield url
    get_settings.cache_clear()


@pytest.fixture
async def provider(github_url, monkeypatch):
    """The exchange provider, configured as the issuer, holding a real local-GitHub token."""
    async with httpx.AsyncClient(base_url=github_url) as http:
        grant = await github_grant(http, scopes="")
    state = ExchangeProvider(github_token=grant["access_token"])
    with serve(_exchange_app(state)) as url:
        state.url = url
        monkeypatch.setenv("WARRANT_ISSUER", url + "/")
        get_settings.cache_clear()
        yield state
    get_settings.cache_clear()
    auth.credentials.credential_store().clear()
