"""LangGraph Studio on `langgraph dev`, explicitly enabled for local development: Studio's
requests act as the configured local user, whose threads they share and whose identity the
graph records. (With Studio disabled, the isolation tests show its requests refused.)"""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk import get_client

from devstack.identity.users import subject_for
from tests.server.conftest import run_langgraph_dev

pytestmark = pytest.mark.server

ALICE = subject_for("alice@example.com")
STUDIO = {"x-auth-scheme": "langsmith"}


@pytest.fixture(scope="module")
def studio_server(devstack, tmp_path_factory):
    with run_langgraph_dev(
        devstack,
        tmp_path_factory.mktemp("langgraph-studio"),
        auth_config={"disable_studio_auth": True},
        extra_env={"WARRANT_STUDIO_ENABLED": "true", "WARRANT_STUDIO_USER": ALICE},
    ) as server:
        yield server


async def test_studio_acts_as_the_configured_user(studio_server, alice_tokens, bob_tokens):
    studio = get_client(url=studio_server.url, api_key=None, headers=STUDIO)
    thread = await studio.threads.create()
    assert thread["metadata"]["owner"] == ALICE
    await studio.runs.wait(
        thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "hello"}]}
    )
    state = await studio.threads.get_state(thread["thread_id"])
    assert state["values"]["user"]["sub"] == ALICE  # the graph acts for the configured user

    alice = get_client(
        url=studio_server.url,
        api_key=None,
        headers={"Authorization": f"Bearer {alice_tokens.access_token}"},
    )
    assert (await alice.threads.get(thread["thread_id"]))["thread_id"] == thread["thread_id"]
    bob = get_client(
        url=studio_server.url,
        api_key=None,
        headers={"Authorization": f"Bearer {bob_tokens.access_token}"},
    )
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await bob.threads.get(thread["thread_id"])
    assert caught.value.response.status_code in (403, 404)


async def test_studio_may_edit_state_where_enabled(studio_server):
    studio = get_client(url=studio_server.url, api_key=None, headers=STUDIO)
    thread = await studio.threads.create()
    await studio.runs.wait(
        thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "hello"}]}
    )
    await studio.threads.update(thread["thread_id"], metadata={"note": "from studio"})
    assert (await studio.threads.get(thread["thread_id"]))["metadata"]["note"] == "from studio"


async def test_without_studio_header_a_token_is_still_required(studio_server):
    anonymous = get_client(url=studio_server.url, api_key=None)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await anonymous.threads.search()
    assert caught.value.response.status_code == 401
