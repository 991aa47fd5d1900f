"""`langgraph dev` behind a deliberately slow identity provider: concurrent requests share one
discovery fetch and are refused together, and the failure is remembered, so requests never queue
behind each other's timeouts."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.auth.slow_issuer import DISCOVERY, SlowIssuer
from tests.server.conftest import run_langgraph_dev

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def slow_server(devstack, tmp_path_factory):
    with SlowIssuer().serving() as slow:
        with run_langgraph_dev(
            devstack,
            tmp_path_factory.mktemp("langgraph-slow-idp"),
            extra_env={
                "WARRANT_ISSUER": slow.url,
                "WARRANT_HTTP_TIMEOUT_SECONDS": "2",
                "WARRANT_PROVIDER_FAILURE_CACHE_SECONDS": "600",
            },
        ) as server:
            yield server, slow


async def test_concurrent_requests_share_one_fetch_and_the_failure_is_remembered(
    slow_server, mint_token
) -> None:
    server, slow = slow_server
    token = mint_token.valid()

    async with httpx.AsyncClient(timeout=60) as http:

        async def request() -> httpx.Response:
            return await http.post(
                server.url + "/threads/search",
                json={},
                headers={"Authorization": f"Bearer {token}"},
            )

        first = asyncio.create_task(request())
        # The first request's discovery fetch is now hanging at the provider...
        assert await asyncio.to_thread(slow.wait_for, DISCOVERY, 1)
        # ...and two more requests arrive while it is in flight: they wait for the same fetch
        # (before: each fetched again after the previous one timed out, one after another).
        answers = await asyncio.gather(first, request(), request())
        assert [a.status_code for a in answers] == [401, 401, 401]
        assert all("identity provider is unavailable" in a.text for a in answers)
        assert slow.hits[DISCOVERY] == 1

        # Within the failure window a new request is refused without asking the provider.
        later = await request()
        assert later.status_code == 401 and "unavailable" in later.text
        assert slow.hits[DISCOVERY] == 1
    assert token not in server.log_text()
