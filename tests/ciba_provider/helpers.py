"""Helpers for the provider's CIBA tests: an in-process provider with a movable clock, the real
`CIBAClient` talking to it through httpx's ASGI transport, and user tokens from the real login."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import httpx

from auth.ciba import CIBAClient, authorization_details
from auth.jwt import ID_TOKEN_TYPES, JWTValidator
from devstack.identity.clients import Client
from devstack.identity.users import subject_for
from settings import get_settings
from tests.devstack.idp_helpers import (
    ISSUER,
    Clock,
    http_client,
    make_provider,
    sign_in,
    tokens_for,
)

__all__ = [
    "ISSUER",
    "Clock",
    "http_client",
    "make_provider",
]

ALICE = subject_for("alice@example.com")
BOB = subject_for("bob@example.com")
GRANT = "urn:openid:params:grant-type:ciba"
DIGEST = "ab12cd34" * 8
DETAILS = authorization_details("create_public_gist", DIGEST)


def agent_secret() -> tuple[str, str]:
    s = get_settings()
    return s.agent_client_id, s.agent_client_secret.get_secret_value()


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def ciba_client(app: Any, clock: Clock, client_id: str | None = None, secret: str | None = None):
    """The project's real CIBA client, pointed at the in-process provider."""
    agent_id, agent_key = agent_secret()
    transport = httpx.ASGITransport(app=app)
    http = httpx.AsyncClient(transport=transport, timeout=10)
    # The grant's ID token is checked against the same in-process provider's keys.
    id_tokens = JWTValidator(
        ISSUER,
        client_id or agent_id,
        token_types=ID_TOKEN_TYPES,
        clock=clock,
        transport=transport,
        timeout=10,
    )
    return CIBAClient(
        ISSUER,
        client_id or agent_id,
        secret or agent_key,
        http=http,
        clock=clock,
        id_tokens=id_tokens,
    )


def add_client(provider: Any, client_id: str, *, ciba: bool = True) -> tuple[str, str]:
    """Register one more confidential client (optionally allowed the CIBA grant)."""
    secret = f"{client_id}-secret"
    grants = {GRANT} if ciba else {"client_credentials"}
    provider.clients.add(
        Client(
            client_id=client_id,
            name=f"Client {client_id}",
            client_secret=secret,
            grant_types=grants,
        )
    )
    return client_id, secret


def start_form(**overrides: Any) -> dict[str, str]:
    """A valid `/bc-authorize` form for alice (client_secret_post); None removes a field."""
    import json

    agent_id, agent_key = agent_secret()
    form: dict[str, Any] = {
        "client_id": agent_id,
        "client_secret": agent_key,
        "login_hint": json.dumps({"format": "iss_sub", "iss": ISSUER, "sub": ALICE}),
        "scope": "openid create:gist",
        "binding_message": "Create public gist notes.md #ab12cd",
        "audience": get_settings().audience,
        "requested_expiry": "120",
        "authorization_details": json.dumps(DETAILS),
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


async def user_tokens(app: Any, email: str = "alice@example.com") -> dict[str, Any]:
    """The token response of the real CLI login (authorization code + PKCE) at the provider."""
    async with http_client(app) as browser:
        await sign_in(browser, email)
        return await tokens_for(browser, audience=get_settings().audience)


async def user_token(app: Any, email: str = "alice@example.com") -> str:
    """An access token from the real CLI login: what the agent server receives."""
    return (await user_tokens(app, email))["access_token"]


async def authenticator_token(app: Any, email: str = "alice@example.com") -> str:
    """The approvals API's credential, enrolled with the CLI login's refresh token."""
    refresh_token = (await user_tokens(app, email))["refresh_token"]
    async with http_client(app) as http:
        answer = await http.post(
            "/api/approvals/authenticator",
            data={"client_id": get_settings().cli_client_id, "refresh_token": refresh_token},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["authenticator_token"]


_KEY_FILE: list[Path] = []


def fresh_provider(tmp_path: Path, clock: Clock):
    """A provider in `tmp_path/devstack` (the same one again on a second call: a restart).

    The RSA signing key is generated once and copied into each new data folder: a fresh 2048-bit
    key costs a good part of a second, and these tests are not about keys."""
    key_file = tmp_path / "devstack" / "signing_key.json"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        if _KEY_FILE:
            shutil.copyfile(_KEY_FILE[0], key_file)
            key_file.chmod(0o600)
    provider, app = make_provider(tmp_path, clock)
    if not _KEY_FILE:
        _KEY_FILE.append(key_file)
    return provider, app, provider.extensions["ciba"]
