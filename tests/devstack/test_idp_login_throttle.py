"""Failed logins slow down per account and per client address (doubling waits, a cap), as
Auth0's brute-force protection does; right passwords are never held up by it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from devstack.identity.login_throttle import ACCOUNT, Backoff, LoginThrottle
from settings import get_settings

from .idp_helpers import ISSUER, Clock, authorize_params, make_provider, query_of


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def idp(tmp_path, clock):
    return make_provider(tmp_path, clock)


def browser(app, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)),
        base_url=ISSUER.rstrip("/"),
        timeout=10,
    )


async def attempt(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """One try at the login form, from a browser without a session (a signed-in one skips it)."""
    http.cookies.clear()
    params = authorize_params()
    params.pop("_verifier")
    state = query_of(await http.get("/authorize", params=params))["state"]
    return await http.post("/u/login", data={"state": state, "email": email, "password": password})


def alice_password() -> str:
    return get_settings().alice_password.get_secret_value()


async def test_an_account_slows_down_after_failures_with_doubling_waits(idp, clock):
    _, app = idp
    async with browser(app) as http:
        for _ in range(ACCOUNT.free):
            assert (await attempt(http, "alice@example.com", "wrong")).status_code == 401
        # even the right password waits now, and the answer says nothing about it
        held = await attempt(http, "Alice@Example.com", alice_password())
        assert held.status_code == 429 and "Too many failed logins" in held.text
        assert held.headers["Retry-After"] == "1" and "set-cookie" not in held.headers
        waits = []
        for _ in range(4):
            clock.advance(int(held.headers["Retry-After"]))
            assert (await attempt(http, "alice@example.com", "wrong")).status_code == 401
            held = await attempt(http, "alice@example.com", "wrong")
            assert held.status_code == 429
            waits.append(int(held.headers["Retry-After"]))
        assert waits == [2, 4, 8, 16]
        clock.advance(16)
        ok = await attempt(http, "alice@example.com", alice_password())
        assert ok.status_code == 302 and "set-cookie" in ok.headers
        # a success starts the account over
        for _ in range(ACCOUNT.free):
            assert (await attempt(http, "alice@example.com", "wrong")).status_code == 401


async def test_a_locked_attempt_never_checks_the_password(idp, clock, monkeypatch):
    provider, app = idp
    checked = []
    real = provider.users.authenticate
    monkeypatch.setattr(
        provider.users, "authenticate", lambda e, p: checked.append(p) or real(e, p)
    )
    async with browser(app) as http:
        for _ in range(ACCOUNT.free):
            await attempt(http, "alice@example.com", "wrong")
        assert (await attempt(http, "alice@example.com", alice_password())).status_code == 429
    assert checked == ["wrong"] * ACCOUNT.free


async def test_an_address_slows_down_across_accounts_and_others_are_unaffected(idp, clock):
    provider, app = idp
    small = Backoff(free=8)  # the rule's shape with fewer (slow, hashed) failures to send
    provider.login_throttle = LoginThrottle(clock, address=small)
    async with browser(app, "127.0.0.2") as sprayer, browser(app, "127.0.0.3") as other:
        for i in range(small.free):
            answer = await attempt(sprayer, f"user{i}@example.com", "password1")
            assert answer.status_code == 401
        held = await attempt(sprayer, "bob@example.com", "password1")
        assert held.status_code == 429 and held.headers["Retry-After"] == "1"
        # another address is not held up by it, for the same accounts
        assert (await attempt(other, "user0@example.com", "password1")).status_code == 401
        assert (await attempt(other, "alice@example.com", alice_password())).status_code == 302


async def test_parallel_guesses_cannot_slip_past_the_count(idp, clock):
    _, app = idp
    async with browser(app) as http:
        answers = await asyncio.gather(
            *(attempt(http, "alice@example.com", f"guess{i}") for i in range(3 * ACCOUNT.free))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(401) == ACCOUNT.free
    assert statuses.count(429) == 2 * ACCOUNT.free


async def test_counts_are_forgotten_after_a_quiet_hour(idp, clock):
    _, app = idp
    async with browser(app) as http:
        for _ in range(ACCOUNT.free):
            await attempt(http, "alice@example.com", "wrong")
        clock.advance(ACCOUNT.forget_after + 1)
        for _ in range(ACCOUNT.free):
            assert (await attempt(http, "alice@example.com", "wrong")).status_code == 401


async def test_many_right_logins_from_one_address_are_never_throttled(idp, clock):
    """The demo and the tests log in over and over from 127.0.0.1."""
    _, app = idp
    s = get_settings()
    async with browser(app) as http:
        for i in range(40):
            user = "alice" if i % 2 else "bob"
            password = getattr(s, f"{user}_password").get_secret_value()
            assert (await attempt(http, f"{user}@example.com", password)).status_code == 302
        # one typo now and then does not add up either
        for _ in range(10):
            assert (await attempt(http, "alice@example.com", "typo")).status_code == 401
            assert (await attempt(http, "alice@example.com", alice_password())).status_code == 302


def test_backoff_is_capped():
    rule = Backoff(free=2, base=1.0, cap=60.0)
    assert [rule.delay(n) for n in range(6)] == [0, 0, 1, 2, 4, 8]
    assert rule.delay(10_000) == 60.0
