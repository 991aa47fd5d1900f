"""CLI login against the devstack provider: PKCE with a loopback redirect, device flow,
refresh, logout with revocation; and the token file's safety."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
import time

import httpx
import pytest

from auth.errors import LoginRequired
from auth.login import (
    DeviceCode,
    LoginClient,
    LoopbackListener,
    TokenFile,
    TokenSet,
    current_tokens,
    login_with_browser,
    login_with_device,
    logout,
)
from tests.auth.browser import approve_device, authorize_in_browser


@pytest.fixture
def passwords(devstack):
    s = devstack.settings
    return {
        "alice": ("alice@example.com", s.alice_password.get_secret_value()),
        "bob": ("bob@example.com", s.bob_password.get_secret_value()),
    }


def _browser(email: str, password: str, seen: list[str] | None = None):
    def open_url(url: str) -> None:
        if seen is not None:
            seen.append(url)
        # The "browser" runs beside the CLI, which is waiting on its loopback listener.
        asyncio.get_running_loop().create_task(authorize_in_browser(url, email, password))

    return open_url


async def test_pkce_login_with_a_loopback_redirect(use_devstack, passwords, tmp_path) -> None:
    seen: list[str] = []
    store = TokenFile(tmp_path / "cli" / "tokens.json")
    tokens = await login_with_browser(_browser(*passwords["alice"], seen), store=store)
    assert tokens.email == "alice@example.com"
    assert tokens.subject.startswith("auth0|alice")
    assert tokens.refresh_token and tokens.id_token
    assert "offline_access" in tokens.scope.split()
    url = httpx.URL(seen[0])
    assert url.params["code_challenge_method"] == "S256"
    assert url.params["redirect_uri"].startswith("http://127.0.0.1:")
    assert url.params["redirect_uri"].endswith("/callback")
    assert "code_verifier" not in seen[0]
    assert store.load() == tokens
    # the access token validates for the API audience
    claims = await LoginClient().validator.validate(tokens.access_token)
    assert claims["sub"] == tokens.subject


async def test_wrong_password_never_completes(use_devstack, passwords) -> None:
    email, _ = passwords["alice"]
    with pytest.raises(LoginRequired, match="No answer"):
        await LoginClient().browser_login(_browser(email, "wrong"), wait_seconds=3)


async def test_a_forged_callback_state_is_refused(use_devstack) -> None:
    async def forge(url: str) -> None:
        redirect = httpx.URL(url).params["redirect_uri"]
        async with httpx.AsyncClient() as http:
            await http.get(redirect, params={"code": "stolen", "state": "not-yours"})

    def open_url(url: str) -> None:
        asyncio.get_running_loop().create_task(forge(url))

    with pytest.raises(LoginRequired, match="state"):
        await LoginClient().browser_login(open_url, wait_seconds=5)


async def test_an_error_callback_is_reported(use_devstack) -> None:
    async def refuse(url: str) -> None:
        params = httpx.URL(url).params
        async with httpx.AsyncClient() as http:
            await http.get(
                params["redirect_uri"],
                params={"error": "access_denied", "state": params["state"]},
            )

    def open_url(url: str) -> None:
        asyncio.get_running_loop().create_task(refuse(url))

    with pytest.raises(LoginRequired, match="access_denied"):
        await LoginClient().browser_login(open_url, wait_seconds=5)


async def test_loopback_listener_answers_once_and_only_on_callback() -> None:
    async with LoopbackListener() as listener:
        assert listener.redirect_uri.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as http:
            other = await http.get(f"http://127.0.0.1:{listener.port}/favicon.ico")
            first = await http.get(listener.redirect_uri, params={"code": "c", "state": "s"})
            second = await http.get(listener.redirect_uri, params={"code": "x", "state": "y"})
        assert (other.status_code, first.status_code, second.status_code) == (404, 200, 409)
        assert await listener.wait(1) == {"code": "c", "state": "s"}


async def test_device_login(use_devstack, passwords, tmp_path) -> None:
    shown: list[DeviceCode] = []

    async def on_code(code: DeviceCode) -> None:
        shown.append(code)
        assert code.verification_uri_complete
        asyncio.get_running_loop().create_task(
            approve_device(code.verification_uri_complete, *passwords["bob"])
        )

    store = TokenFile(tmp_path / "tokens.json")
    tokens = await login_with_device(on_code, store=store)
    assert tokens.email == "bob@example.com"
    assert store.load() == tokens
    assert shown and "device_code" not in repr(shown[0])
    assert shown[0].device_code not in repr(shown[0])


async def test_device_login_denied(use_devstack, passwords) -> None:
    async def on_code(code: DeviceCode) -> None:
        asyncio.get_running_loop().create_task(
            approve_device(code.verification_uri_complete, *passwords["bob"], decision="deny")
        )

    with pytest.raises(LoginRequired, match="denied"):
        await LoginClient().device_login(on_code)


async def test_device_login_slow_down_and_expiry() -> None:
    """RFC 8628: slow_down adds 5 s to the interval; an expired code ends the login."""
    answers = iter(["authorization_pending", "slow_down", "authorization_pending", "expired_token"])
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": "https://idp.test/",
                    "jwks_uri": "https://idp.test/jwks",
                    "token_endpoint": "https://idp.test/token",
                    "device_authorization_endpoint": "https://idp.test/device",
                },
            )
        if request.url.path == "/device":
            return httpx.Response(
                200,
                json={
                    "device_code": "dc",
                    "user_code": "ABCD-EFGH",
                    "verification_uri": "https://idp.test/activate",
                    "expires_in": 600,
                    "interval": 5,
                },
            )
        return httpx.Response(400, json={"error": next(answers)})

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = LoginClient("https://idp.test/", transport=httpx.MockTransport(handler), sleep=sleep)
    with pytest.raises(LoginRequired, match="expired"):
        await client.device_login(lambda code: None)
    assert sleeps == [5, 5, 10, 10]


async def test_refresh_renews_and_rotates(use_devstack, passwords, tmp_path) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    tokens = await login_with_browser(_browser(*passwords["alice"]), store=store)
    # Pretend the access token is about to expire: current_tokens renews and saves.
    store.save(dataclasses.replace(tokens, expires_at=time.time() + 5))
    fresh = await current_tokens(store=store)
    assert fresh.access_token != tokens.access_token
    assert fresh.subject == tokens.subject and fresh.email == tokens.email
    assert store.load() == fresh
    # Still valid: no refresh, same tokens.
    assert await current_tokens(store=store) == fresh


async def test_logout_revokes_and_deletes(use_devstack, passwords, tmp_path) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    tokens = await login_with_browser(_browser(*passwords["alice"]), store=store)
    result = await logout(store=store)
    assert result.revoked and result.removed
    assert not store.path.exists()
    with pytest.raises(LoginRequired):
        await LoginClient().refresh(tokens)  # the refresh token is dead at the provider
    with pytest.raises(LoginRequired, match="not logged in"):
        await current_tokens(store=store)


async def test_logout_when_the_provider_is_down_still_deletes(tmp_path, monkeypatch) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    store.save(_fake_tokens(issuer="http://127.0.0.1:9/"))
    result = await logout(store=store)
    assert result.removed and not result.revoked
    assert "unavailable" in result.detail
    assert not store.path.exists()


async def test_a_login_for_another_issuer_is_not_used(use_devstack, tmp_path) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    store.save(_fake_tokens(issuer="https://elsewhere.example.com/"))
    with pytest.raises(LoginRequired, match="log in again"):
        await current_tokens(store=store)


def _fake_tokens(**changes) -> TokenSet:
    base = TokenSet(
        access_token="header.payload.signature",
        expires_at=time.time() + 600,
        issuer="https://idp.test/",
        client_id="warrant-cli",
        audience="https://api.warrant.local",
        subject="auth0|alice",
        email="alice@example.com",
        refresh_token="refresh-secret",
        id_token="id.token.value",
    )
    return dataclasses.replace(base, **changes)


def test_token_file_is_private_and_atomic(tmp_path) -> None:
    store = TokenFile(tmp_path / "data" / "cli" / "tokens.json")
    tokens = _fake_tokens()
    store.save(tokens)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.load() == tokens
    store.save(dataclasses.replace(tokens, email="new@example.com"))
    assert store.load().email == "new@example.com"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    # no temporary files left behind
    assert [p.name for p in store.path.parent.iterdir()] == ["tokens.json"]


def test_token_repr_hides_tokens() -> None:
    tokens = _fake_tokens()
    text = repr(tokens)
    assert "refresh-secret" not in text and "header.payload" not in text
    assert "id.token.value" not in text


def test_a_world_readable_token_file_is_refused(tmp_path) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    store.save(_fake_tokens())
    os.chmod(store.path, 0o644)
    with pytest.raises(LoginRequired, match="other users"):
        store.load()


def test_a_corrupt_token_file_asks_for_a_new_login(tmp_path) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    store.save(_fake_tokens())
    store.path.write_text("{not json")
    with pytest.raises(LoginRequired, match="unreadable"):
        store.load()
    assert TokenFile(tmp_path / "missing.json").load() is None


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    store.save(_fake_tokens())

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.save(_fake_tokens(email="other@example.com"))
    monkeypatch.undo()
    assert store.load().email == "alice@example.com"
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


async def test_discovery_of_the_devstack_provider(use_devstack) -> None:
    from auth.oidc import discover

    meta = await discover()
    assert meta.issuer == use_devstack.issuer_url
    assert meta.device_authorization_endpoint and meta.revocation_endpoint
    assert "S256" in meta.code_challenge_methods_supported
    assert await discover() is meta  # cached
