"""Discovery is fetched once per issuer (one in-flight fetch, failures remembered briefly); the
JWKS is refetched on an unknown kid, rate-limited."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from joserfc.jwk import RSAKey

from auth.errors import ProviderUnavailable
from auth.jwt import JWTValidator, TokenRejected
from auth.oidc import DiscoveryCache, ProviderMetadata
from settings import get_settings
from tests.auth.jwt_kit import AUDIENCE, ISSUER, FakeIssuer
from tests.auth.slow_issuer import DISCOVERY, SlowIssuer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_discovery_is_cached_per_issuer() -> None:
    issuer = FakeIssuer()
    cache = DiscoveryCache(transport=issuer.transport())
    first = await cache.get(ISSUER)
    second = await cache.get(ISSUER.rstrip("/"))  # same issuer, other spelling
    assert first is second
    assert isinstance(first, ProviderMetadata)
    assert first.jwks_uri == ISSUER + ".well-known/jwks.json"
    assert issuer.discovery_hits == 1


async def test_concurrent_first_requests_fetch_once() -> None:
    issuer = FakeIssuer()
    cache = DiscoveryCache(transport=issuer.transport())
    results = await asyncio.gather(*(cache.get(ISSUER) for _ in range(10)))
    assert all(r is results[0] for r in results)
    assert issuer.discovery_hits == 1


async def test_discovery_expires_after_its_ttl() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    cache = DiscoveryCache(transport=issuer.transport(), ttl=60, clock=clock)
    await cache.get(ISSUER)
    clock.now += 59
    await cache.get(ISSUER)
    assert issuer.discovery_hits == 1
    clock.now += 2
    await cache.get(ISSUER)
    assert issuer.discovery_hits == 2


async def test_a_failure_is_remembered_briefly_then_retried() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(500)
        return httpx.Response(
            200,
            json={"issuer": ISSUER, "jwks_uri": ISSUER + "jwks", "token_endpoint": ISSUER + "t"},
        )

    clock = Clock()
    cache = DiscoveryCache(transport=httpx.MockTransport(handler), failure_ttl=5, clock=clock)
    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        await cache.get(ISSUER)
    clock.now += 4
    with pytest.raises(ProviderUnavailable, match="HTTP 500"):  # remembered: no second fetch
        await cache.get(ISSUER)
    assert calls["n"] == 1
    clock.now += 2
    assert (await cache.get(ISSUER)).token_endpoint == ISSUER + "t"
    assert calls["n"] == 2


async def test_the_failure_window_comes_from_the_settings() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(503)

    cache = DiscoveryCache(transport=httpx.MockTransport(handler))
    with get_settings.override(provider_failure_cache_seconds=0):
        for _ in range(3):
            with pytest.raises(ProviderUnavailable):
                await cache.get(ISSUER)
    assert calls["n"] == 3  # a zero window remembers nothing
    with get_settings.override(provider_failure_cache_seconds=600):
        for _ in range(3):
            with pytest.raises(ProviderUnavailable):
                await cache.get(ISSUER)
    assert calls["n"] == 3  # the last failure is within a 600 s window: no more fetches


async def test_concurrent_callers_of_a_slow_provider_share_one_fetch() -> None:
    with SlowIssuer().serving() as slow:
        cache = DiscoveryCache(timeout=30)
        callers = [asyncio.create_task(cache.get(slow.url)) for _ in range(3)]
        assert await asyncio.to_thread(slow.wait_for, DISCOVERY, 1)
        assert not any(c.done() for c in callers)
        slow.release()
        results = await asyncio.gather(*callers)
    assert all(r is results[0] for r in results)
    assert slow.hits[DISCOVERY] == 1 and cache.fetches == 1


async def test_a_timed_out_fetch_fails_every_waiting_caller_once() -> None:
    # Before: one lock and no memory of failures, so the callers fetched one after another
    # (three timeouts in a row for the third) and every later request fetched again.
    with SlowIssuer().serving() as slow:
        clock = Clock()
        cache = DiscoveryCache(timeout=0.5, failure_ttl=30, clock=clock)
        results = await asyncio.gather(
            *(cache.get(slow.url) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, ProviderUnavailable) for r in results), results
        assert all("timed out" in str(r) for r in results)
        assert slow.hits[DISCOVERY] == 1 and cache.fetches == 1
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await cache.get(slow.url)  # within the failure window: refused without a fetch
        assert slow.hits[DISCOVERY] == 1
        clock.now += 31
        slow.release()
        assert (await cache.get(slow.url)).issuer == slow.url
        assert slow.hits[DISCOVERY] == 2


async def test_a_caller_giving_up_does_not_cancel_the_shared_fetch() -> None:
    with SlowIssuer().serving() as slow:
        cache = DiscoveryCache(timeout=30)
        impatient = asyncio.create_task(cache.get(slow.url))
        patient = asyncio.create_task(cache.get(slow.url))
        assert await asyncio.to_thread(slow.wait_for, DISCOVERY, 1)
        impatient.cancel()
        slow.release()
        assert (await patient).issuer == slow.url
        with pytest.raises(asyncio.CancelledError):
            await impatient
    assert slow.hits[DISCOVERY] == 1


async def test_a_validator_behind_a_slow_provider_fetches_once_for_concurrent_tokens() -> None:
    issuer = FakeIssuer()
    with SlowIssuer().serving() as slow:
        validator = JWTValidator(slow.url, AUDIENCE, timeout=0.5)
        results = await asyncio.gather(
            *(validator.validate(issuer.mint()) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, ProviderUnavailable) for r in results), results
        with pytest.raises(ProviderUnavailable):
            await validator.validate(issuer.mint())
    assert slow.hits[DISCOVERY] == 1


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, text="<html>"), "not JSON"),
        (httpx.Response(200, json=[1, 2]), "not a JSON object"),
        (httpx.Response(200, json={"issuer": ISSUER}), "jwks_uri"),
        (
            httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "jwks_uri": "file:///etc/passwd",
                    "token_endpoint": ISSUER + "t",
                },
            ),
            "jwks_uri",
        ),
        (
            httpx.Response(
                200,
                json={
                    "issuer": "https://other/",
                    "jwks_uri": ISSUER + "j",
                    "token_endpoint": ISSUER + "t",
                },
            ),
            "another issuer",
        ),
        (httpx.Response(404), "HTTP 404"),
    ],
)
async def test_bad_discovery_answers(response: httpx.Response, message: str) -> None:
    cache = DiscoveryCache(transport=httpx.MockTransport(lambda request: response))
    with pytest.raises(ProviderUnavailable, match=message):
        await cache.get(ISSUER)


async def test_unreachable_provider() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    cache = DiscoveryCache(transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        await cache.get(ISSUER)


def test_require_names_a_missing_endpoint() -> None:
    meta = ProviderMetadata(issuer=ISSUER, jwks_uri=ISSUER + "j", token_endpoint=ISSUER + "t")
    with pytest.raises(ProviderUnavailable, match="device_authorization_endpoint"):
        meta.require("device_authorization_endpoint")


def _validator(issuer: FakeIssuer, clock: Clock, min_refresh: float = 60) -> JWTValidator:
    return JWTValidator(
        ISSUER,
        AUDIENCE,
        transport=issuer.transport(),
        monotonic=clock,
        jwks_min_refresh_seconds=min_refresh,
    )


async def test_concurrent_tokens_behind_a_slow_jwks_share_one_fetch() -> None:
    issuer = FakeIssuer()
    with SlowIssuer(hold=("/jwks",)).serving() as slow:
        validator = JWTValidator(slow.url, AUDIENCE, timeout=0.5)
        results = await asyncio.gather(
            *(validator.validate(issuer.mint()) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, ProviderUnavailable) for r in results), results
        with pytest.raises(ProviderUnavailable):  # within the failure window: no new fetch
            await validator.validate(issuer.mint())
    assert slow.hits["/jwks"] == 1 and slow.hits[DISCOVERY] == 1


async def test_keys_are_fetched_once_for_many_tokens() -> None:
    issuer = FakeIssuer()
    validator = _validator(issuer, Clock())
    for _ in range(5):
        await validator.validate(issuer.mint())
    assert issuer.jwks_hits == 1
    assert issuer.discovery_hits == 1


async def test_a_rotated_key_is_picked_up_by_one_refresh() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    validator = _validator(issuer, clock)
    await validator.validate(issuer.mint())
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "use": "sig"}, private=True)
    issuer.published.append(rotated)
    clock.now += 61
    claims = await validator.validate(issuer.mint(key=rotated))
    assert claims["sub"] == "auth0|alice"
    assert issuer.jwks_hits == 2


async def test_unknown_kids_do_not_hammer_the_provider() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    validator = _validator(issuer, clock, min_refresh=60)
    await validator.validate(issuer.mint())  # first fetch
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"}, private=True)
    clock.now += 61
    with pytest.raises(TokenRejected) as caught:
        await validator.validate(issuer.mint(key=stranger))  # refresh allowed: second fetch
    assert caught.value.reason == "unknown_kid"
    for _ in range(20):
        clock.now += 1
        with pytest.raises(TokenRejected):
            await validator.validate(issuer.mint(key=stranger))
    assert issuer.jwks_hits == 2  # 20 more unknown kids within the window: no more fetches
    clock.now += 60
    with pytest.raises(TokenRejected):
        await validator.validate(issuer.mint(key=stranger))
    assert issuer.jwks_hits == 3  # the window passed: one more fetch


async def test_a_new_key_within_the_window_waits_for_the_window() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    validator = _validator(issuer, clock, min_refresh=60)
    await validator.validate(issuer.mint())
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-3", "use": "sig"}, private=True)
    issuer.published.append(rotated)
    clock.now += 10
    with pytest.raises(TokenRejected):
        await validator.validate(issuer.mint(key=rotated))
    clock.now += 50
    assert (await validator.validate(issuer.mint(key=rotated)))["iss"] == ISSUER


async def test_concurrent_unknown_kids_refresh_once() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    validator = _validator(issuer, clock)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"}, private=True)
    token = issuer.mint(key=stranger)
    results = await asyncio.gather(
        *(validator.validate(token) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, TokenRejected) for r in results)
    assert issuer.jwks_hits == 1


async def test_jwks_entries_that_are_not_signature_keys_are_skipped() -> None:
    issuer = FakeIssuer()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "jwks_uri": ISSUER + "jwks",
                    "token_endpoint": ISSUER + "t",
                },
            )
        enc = dict(issuer.rsa.as_dict(private=False), use="enc", kid="enc-1")
        oct_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "oct-1"}
        broken = {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}
        good = issuer.rsa.as_dict(private=False)
        return httpx.Response(200, json={"keys": [enc, oct_key, broken, "junk", good]})

    validator = JWTValidator(ISSUER, AUDIENCE, transport=httpx.MockTransport(handler))
    assert (await validator.validate(issuer.mint()))["sub"] == "auth0|alice"
    for kid in ("enc-1", "oct-1", "broken"):
        with pytest.raises(TokenRejected):
            await validator.validate(issuer.mint(kid=kid))


async def test_a_jwks_outage_at_startup_recovers_quickly() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    validator = _validator(issuer, clock, min_refresh=60)
    issuer.fail_jwks = True
    with pytest.raises(ProviderUnavailable):
        await validator.validate(issuer.mint())
    issuer.fail_jwks = False
    clock.now += 1
    with pytest.raises(ProviderUnavailable):  # still inside the short retry window
        await validator.validate(issuer.mint())
    assert issuer.jwks_hits == 1
    clock.now += 5
    assert (await validator.validate(issuer.mint()))["sub"] == "auth0|alice"
    assert issuer.jwks_hits == 2


async def test_an_outage_after_keys_were_loaded_keeps_the_known_keys() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    validator = _validator(issuer, clock, min_refresh=60)
    await validator.validate(issuer.mint())
    issuer.fail_jwks = True
    clock.now += 120
    # a known kid needs no fetch: validation goes on during the outage
    assert (await validator.validate(issuer.mint()))["sub"] == "auth0|alice"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"}, private=True)
    with pytest.raises(ProviderUnavailable):
        await validator.validate(issuer.mint(key=stranger))
