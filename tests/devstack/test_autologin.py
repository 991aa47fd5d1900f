"""`autologin.login` reports failures as typed errors, never with a token in the message."""

from __future__ import annotations

import socket

import pytest

from auth.errors import LoginRequired, ProviderUnavailable
from devstack.identity.autologin import TokenSet, login, pkce_pair
from settings import get_settings

from .idp_helpers import ISSUER, http_client, make_provider


def test_pkce_pair_is_s256():
    import base64
    import hashlib

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()


def test_tokenset_repr_hides_tokens():
    tokens = TokenSet.from_response(
        {
            "access_token": "AT-secret",
            "refresh_token": "RT-secret",
            "id_token": "IT-secret",
            "expires_in": 60,
            "scope": "openid",
        },
        now=1000.0,
    )
    assert tokens.expires_at == 1060.0 and tokens.scope == "openid"
    assert "secret" not in repr(tokens)


async def test_unreachable_provider():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderUnavailable):
        await login(f"http://127.0.0.1:{port}/", "alice@example.com", "x", client_id="warrant-cli")


async def test_provider_error_redirect_becomes_login_required(tmp_path):
    _, app = make_provider(tmp_path)
    s = get_settings()
    async with http_client(app) as http:
        with pytest.raises(LoginRequired, match="access_denied"):
            await login(
                ISSUER,
                "alice@example.com",
                s.alice_password.get_secret_value(),
                client_id=s.cli_client_id,
                audience="https://unknown.example.com",
                http=http,
            )
        with pytest.raises(LoginRequired, match="stopped with HTTP 400"):
            await login(ISSUER, "alice@example.com", "x", client_id="no-such-client", http=http)
