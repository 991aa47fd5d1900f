"""The Token Vault client against a scripted provider: Auth0's wire format, cache, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from auth.errors import (
    ConnectionRequired,
    ConnectionTokenRejected,
    LoginRequired,
    ProviderUnavailable,
)
from auth.token_vault import (
    GRANT_TYPE,
    REQUESTED_TOKEN_TYPE,
    SUBJECT_TOKEN_TYPE_ACCESS,
    SUBJECT_TOKEN_TYPE_REFRESH,
    TokenVault,
    get_token_vault,
    parse_scopes,
)

ISSUER = "https://tenant.example.com/"
SECRET_UPSTREAM = "gho_upstreamSECRETtoken"
ALICE = "alice-subject-token-SECRET"
BOB = "bob-subject-token-SECRET"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


Handler = Callable[[httpx.Request], httpx.Response]


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _ok(scope: str = "gist,read:user", expires_in: int = 3600) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        subject = _form(request)["subject_token"]
        return httpx.Response(
            200,
            json={
                "access_token": f"{SECRET_UPSTREAM}-{subject}",
                "expires_in": expires_in,
                "scope": scope,
                "issued_token_type": REQUESTED_TOKEN_TYPE,
                "token_type": "Bearer",
            },
        )

    return handler


def _vault(
    handler: Handler,
    clock: Clock | None = None,
    discovery: dict | bool | None = None,
    **kwargs,
) -> tuple[TokenVault, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    doc = (
        discovery
        if isinstance(discovery, dict)
        else {
            "issuer": ISSUER,
            "token_endpoint": "https://tenant.example.com/oauth/token",
        }
    )

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            if discovery is False:
                return httpx.Response(404, json={"error": "not_found"})
            return httpx.Response(200, json=doc)
        seen.append(request)
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    vault = TokenVault(ISSUER, "agent", "agent-secret", http=http, clock=clock or Clock(), **kwargs)
    return vault, seen


async def _get(vault: TokenVault, user: str = "auth0|alice", subject: str = ALICE, **kw):
    return await vault.get_token(
        user_id=user,
        subject_token=subject,
        subject_token_type=kw.pop("subject_token_type", SUBJECT_TOKEN_TYPE_ACCESS),
        connection=kw.pop("connection", "github"),
        scopes=kw.pop("scopes", ["gist"]),
        **kw,
    )


def test_scopes_parse_from_spaces_commas_and_lists() -> None:
    assert parse_scopes("gist read:user") == {"gist", "read:user"}
    assert parse_scopes("gist,read:user") == {"gist", "read:user"}
    assert parse_scopes("gist, read:user ,repo") == {"gist", "read:user", "repo"}
    assert parse_scopes(["gist", "repo user"]) == {"gist", "repo", "user"}
    assert parse_scopes(None) == frozenset() and parse_scopes("") == frozenset()


async def test_exchange_uses_auth0_wire_format() -> None:
    vault, seen = _vault(_ok())
    token = await _get(vault, login_hint="alice-gh", subject_token_type=SUBJECT_TOKEN_TYPE_REFRESH)
    form = _form(seen[0])
    assert seen[0].method == "POST" and seen[0].url.path == "/oauth/token"
    assert form == {
        "grant_type": GRANT_TYPE,
        "client_id": "agent",
        "client_secret": "agent-secret",
        "subject_token": ALICE,
        "subject_token_type": SUBJECT_TOKEN_TYPE_REFRESH,
        "requested_token_type": REQUESTED_TOKEN_TYPE,
        "connection": "github",
        "login_hint": "alice-gh",
    }
    assert "scope" not in form  # Auth0's grant takes no scope parameter
    assert token.access_token == f"{SECRET_UPSTREAM}-{ALICE}"
    assert token.scopes == {"gist", "read:user"}
    assert token.expires_at == pytest.approx(1_003_600.0)
    assert SECRET_UPSTREAM not in repr(token)


async def test_many_calls_one_exchange_and_users_never_share() -> None:
    vault, seen = _vault(_ok())
    tokens = [await _get(vault) for _ in range(10)]
    assert len(seen) == 1 and vault.exchanges == 1
    assert len({t.access_token for t in tokens}) == 1
    bob = await _get(vault, user="auth0|bob", subject=BOB)
    assert len(seen) == 2
    assert bob.access_token != tokens[0].access_token
    assert bob.access_token.endswith(BOB)


async def test_a_user_id_with_another_users_token_never_gets_the_cached_token() -> None:
    vault, seen = _vault(_ok())
    alice = await _get(vault)
    forged = await _get(vault, user="auth0|alice", subject=BOB)
    assert len(seen) == 2
    assert forged.access_token != alice.access_token


async def test_concurrent_first_calls_share_one_exchange() -> None:
    release = asyncio.Event()
    ok = _ok()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return ok(request)

    seen: list[httpx.Request] = []

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"token_endpoint": f"{ISSUER}oauth/token"})
        seen.append(request)
        return await slow(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    vault = TokenVault(ISSUER, "agent", "s", http=http)
    tasks = [asyncio.create_task(_get(vault)) for _ in range(20)]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*tasks)
    assert len(seen) == 1
    assert len({r.access_token for r in results}) == 1


async def test_a_cancelled_waiter_does_not_cancel_the_shared_exchange() -> None:
    release = asyncio.Event()
    calls = 0

    async def route(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"token_endpoint": f"{ISSUER}oauth/token"})
        calls += 1
        await release.wait()
        return _ok()(request)

    vault = TokenVault(
        ISSUER, "a", "s", http=httpx.AsyncClient(transport=httpx.MockTransport(route))
    )
    first = asyncio.create_task(_get(vault))
    second = asyncio.create_task(_get(vault))
    await asyncio.sleep(0.05)
    first.cancel()
    release.set()
    token = await second
    assert calls == 1 and token.access_token.endswith(ALICE)


async def test_failed_exchange_is_not_cached_and_is_retried() -> None:
    answers = [httpx.Response(503, text="down"), None]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        return answer if answer is not None else _ok()(request)

    vault, seen = _vault(handler)
    with pytest.raises(ProviderUnavailable):
        await _get(vault)
    token = await _get(vault)
    assert len(seen) == 2 and token.access_token


async def test_token_near_expiry_is_exchanged_again() -> None:
    clock = Clock()
    vault, seen = _vault(_ok(expires_in=3600), clock=clock, refresh_margin=60)
    await _get(vault)
    clock.now += 3500  # 100 s left: still fresh
    await _get(vault)
    assert len(seen) == 1
    clock.now += 50  # 50 s left: inside the margin
    await _get(vault)
    assert len(seen) == 2


async def test_short_lived_token_is_still_reused_for_half_its_life() -> None:
    clock = Clock()
    vault, seen = _vault(_ok(expires_in=30), clock=clock, refresh_margin=60)
    await _get(vault)
    clock.now += 10
    await _get(vault)
    assert len(seen) == 1
    clock.now += 10
    await _get(vault)
    assert len(seen) == 2


async def test_invalidate_forces_a_new_exchange_for_that_user_only() -> None:
    vault, seen = _vault(_ok())
    await _get(vault)
    await _get(vault, user="auth0|bob", subject=BOB)
    assert vault.invalidate("auth0|alice", "github") == 1
    await _get(vault)
    await _get(vault, user="auth0|bob", subject=BOB)
    assert len(seen) == 3


async def test_cache_is_keyed_by_scope_set() -> None:
    vault, seen = _vault(_ok(scope="gist read:user"))
    await _get(vault, scopes=["gist"])
    await _get(vault, scopes=["gist", "read:user"])
    await _get(vault, scopes=["read:user", "gist"])
    assert len(seen) == 2


async def test_fewer_scopes_than_needed_asks_to_reconnect() -> None:
    vault, _ = _vault(_ok(scope="read:user"))
    with pytest.raises(ConnectionRequired) as caught:
        await _get(vault, scopes=["gist", "read:user"])
    err = caught.value
    assert err.connection == "github"
    assert err.missing_scopes == ["gist"]
    assert set(err.scopes) == {"gist", "read:user"}
    assert err.connect_url.startswith(f"{ISSUER}connected-accounts/connect?connection=github")
    assert "gist" in err.connect_url and "gist" in str(err)
    assert SECRET_UPSTREAM not in str(err)


async def test_missing_scope_field_fails_closed_when_scopes_are_needed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "t", "expires_in": 60})

    vault, _ = _vault(handler)
    with pytest.raises(ConnectionRequired):
        await _get(vault, scopes=["gist"])
    assert (await _get(vault, scopes=[])).access_token == "t"


async def test_never_connected_asks_to_connect_with_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={
                "error": "federated_connection_refresh_token_not_found",
                "error_description": "Federated connection Refresh Token not found.",
            },
        )

    vault, _ = _vault(handler, connect_url="https://app.example/connect?c={connection}&s={scopes}")
    with pytest.raises(ConnectionRequired) as caught:
        await _get(vault, scopes=["gist", "read:user"])
    assert caught.value.connect_url == "https://app.example/connect?c=github&s=gist%20read%3Auser"
    assert caught.value.missing_scopes == ["gist", "read:user"]
    assert "Connect your github account" in str(caught.value)


async def test_refused_user_token_asks_to_log_in() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "invalid_grant", "error_description": "expired"})

    vault, _ = _vault(handler)
    with pytest.raises(LoginRequired, match="log in again"):
        await _get(vault)


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (httpx.Response(500, json={"error": "server_error"}), "HTTP 500"),
        (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502"),
        (httpx.Response(200, text="not json"), "not JSON"),
        (httpx.Response(200, json=["a", "list"]), "not a JSON object"),
        (httpx.Response(200, json={"expires_in": 60}), "nonsense"),
        (httpx.Response(200, json={"access_token": "", "expires_in": 60}), "nonsense"),
        (httpx.Response(200, json={"access_token": "t", "expires_in": "soon"}), "nonsense"),
        (httpx.Response(200, json={"access_token": "t", "expires_in": -5}), "nonsense"),
        (httpx.Response(403, json={"error": "unauthorized_client"}), "agent's client"),
        (httpx.Response(401, json={"error": "invalid_client"}), "invalid_client"),
        (httpx.Response(429, json={"error": "too_many_requests"}), "rate limiting"),
        (httpx.Response(418, text="teapot"), "not JSON"),
        (httpx.Response(400, json={"unexpected": True}), "HTTP 400"),
    ],
)
async def test_provider_nonsense_and_failures_are_provider_unavailable(
    response: httpx.Response, words: str
) -> None:
    vault, _ = _vault(lambda request: response)
    with pytest.raises(ProviderUnavailable) as caught:
        await _get(vault, scopes=[])
    message = str(caught.value)
    assert words in message and "nothing was done" in message
    assert ALICE not in message and "agent-secret" not in message


async def test_timeout_and_refused_connection() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    vault, _ = _vault(timeout)
    with pytest.raises(ProviderUnavailable, match="did not answer in time"):
        await _get(vault)
    vault, _ = _vault(refused)
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        await _get(vault)


async def test_provider_refusing_connections_for_real() -> None:
    # A port nobody listens on: the real transport, not a mock.
    vault = TokenVault("http://127.0.0.1:9/", "a", "s", timeout=2)
    with pytest.raises(ProviderUnavailable):
        await _get(vault)


async def test_discovery_naming_other_paths_is_followed() -> None:
    vault, seen = _vault(
        _ok(), discovery={"issuer": ISSUER, "token_endpoint": "https://tenant.example.com/x/token"}
    )
    await _get(vault)
    await _get(vault, user="auth0|bob", subject=BOB)
    assert [r.url.path for r in seen] == ["/x/token", "/x/token"]


async def test_without_discovery_the_auth0_path_is_used() -> None:
    vault, seen = _vault(_ok(), discovery=False)
    await _get(vault)
    assert seen[0].url.path == "/oauth/token"


async def test_missing_user_or_token_is_login_required_and_bad_type_is_rejected() -> None:
    vault, seen = _vault(_ok())
    with pytest.raises(LoginRequired):
        await _get(vault, subject="")
    with pytest.raises(ValueError, match="subject token type"):
        await _get(vault, subject_token_type="urn:bogus")
    assert seen == []


async def test_reconnect_error_after_a_second_refusal() -> None:
    vault, _ = _vault(_ok())
    err = vault.reconnect_error(ConnectionTokenRejected("github", "GitHub"), ["gist"])
    assert err.missing_scopes == ["gist"] and err.connection == "github"
    err = vault.reconnect_error(ConnectionTokenRejected("github", "GitHub", ("gist",)), [])
    assert err.missing_scopes == ["gist"] and "gist" in err.connect_url


async def test_no_token_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    vault, _ = _vault(_ok(scope="read:user"))
    await _get(vault, scopes=[])
    with pytest.raises(ConnectionRequired):
        await _get(vault, user="auth0|bob", subject=BOB, scopes=["gist"])
    text = caplog.text
    assert "exchanged" in text
    for secret in (SECRET_UPSTREAM, ALICE, BOB, "agent-secret"):
        assert secret not in text


def test_process_vault_follows_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import get_settings

    monkeypatch.setenv("WARRANT_ISSUER", "https://one.example.com")
    get_settings.cache_clear()
    try:
        first = get_token_vault()
        assert get_token_vault() is first and first.issuer == "https://one.example.com/"
        with get_settings.override(issuer="https://two.example.com"):
            assert get_token_vault().issuer == "https://two.example.com/"
        assert get_token_vault() is first
    finally:
        get_settings.cache_clear()


async def test_run_with_token_retries_once_after_a_refusal_then_asks_to_reconnect() -> None:
    vault, seen = _vault(_ok())
    used: list[str] = []

    async def refuse_once(token):
        used.append(token.access_token)
        if len(used) == 1:
            raise ConnectionTokenRejected("github", "GitHub")
        return "result"

    args = {"user_id": "auth0|alice", "subject_token": ALICE, "scopes": ["gist"]}
    assert await vault.run_with_token(refuse_once, **args) == "result"
    assert len(seen) == 2 and len(used) == 2  # invalidated, exchanged again, retried once

    async def always_refuse(token):
        raise ConnectionTokenRejected("github", "GitHub")

    with pytest.raises(ConnectionRequired) as caught:
        await vault.run_with_token(always_refuse, **args)
    assert caught.value.connection == "github" and "gist" in caught.value.connect_url
    assert len(seen) == 3  # the cached token was tried, then one fresh exchange, no loop


async def test_run_with_token_asks_for_the_scope_the_api_missed() -> None:
    vault, seen = _vault(_ok(scope="read:user"))

    async def needs_gist(token):
        raise ConnectionTokenRejected("github", "GitHub", ("gist",))

    with pytest.raises(ConnectionRequired) as caught:
        await vault.run_with_token(needs_gist, user_id="auth0|alice", subject_token=ALICE)
    assert caught.value.missing_scopes == ["gist"]
    assert len(seen) == 2
