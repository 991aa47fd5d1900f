"""Helpers for the identity provider tests: an in-process provider with a clock the test moves."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt

from devstack.identity import IdentityProvider, Lifetimes
from devstack.identity.autologin import pkce_pair
from settings import get_settings

ISSUER = "http://127.0.0.1:9400/"
CALLBACK = "http://127.0.0.1:53682/callback"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_provider(tmp_path: Path, clock: Clock | None = None, **lifetimes: int):
    provider = IdentityProvider(
        get_settings(),
        issuer=ISSUER,
        data_dir=tmp_path / "devstack",
        clock=clock or time.time,
        lifetimes=Lifetimes(**lifetimes),
    )
    provider.load_extensions()
    return provider, provider.build_app()


def http_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ISSUER.rstrip("/"), timeout=10
    )


def query_of(response: httpx.Response) -> dict[str, str]:
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def cli_id() -> str:
    return get_settings().cli_client_id


def agent_auth() -> tuple[str, str]:
    s = get_settings()
    return s.agent_client_id, s.agent_client_secret.get_secret_value()


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def authorize_params(**overrides: Any) -> dict[str, str]:
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": cli_id(),
        "redirect_uri": CALLBACK,
        "scope": "openid profile email offline_access",
        "state": "state-123",
        "nonce": "nonce-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "_verifier": verifier,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def sign_in(
    http: httpx.AsyncClient, email: str = "alice@example.com", password: str | None = None
) -> None:
    """Log in at the provider in this client's cookie jar (via the login page's own flow)."""
    page = await http.get(
        "/authorize", params={k: v for k, v in authorize_params().items() if k != "_verifier"}
    )
    assert page.status_code == 302 and "/u/login" in page.headers["location"], page.text
    state = query_of(page)["state"]
    s = get_settings()
    pw = password if password is not None else s.alice_password.get_secret_value()
    if email.startswith("bob"):
        pw = password if password is not None else s.bob_password.get_secret_value()
    answer = await http.post("/u/login", data={"state": state, "email": email, "password": pw})
    assert answer.status_code == 302, answer.text


async def get_code(http: httpx.AsyncClient, **overrides: Any) -> tuple[str, str, dict[str, str]]:
    """Run /authorize for a signed-in client; returns (code, verifier, params)."""
    params = authorize_params(**overrides)
    verifier = params.pop("_verifier")
    response = await http.get("/authorize", params=params)
    assert response.status_code == 302, response.text
    query = query_of(response)
    assert "code" in query, query
    return query["code"], verifier, params


async def exchange(
    http: httpx.AsyncClient, code: str, verifier: str, **extra: Any
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": CALLBACK,
        "client_id": cli_id(),
        **extra,
    }
    return await http.post("/oauth/token", data={k: v for k, v in data.items() if v is not None})


async def tokens_for(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    code, verifier, _ = await get_code(http, **overrides)
    answer = await exchange(http, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def claims_of(token: str, provider: IdentityProvider) -> tuple[dict, dict]:
    decoded = jwt.decode(token, provider.signing_key.key_set, algorithms=["RS256"])
    return dict(decoded.header), dict(decoded.claims)
