"""`langgraph dev` with Warrant's auth, driven through langgraph_sdk with real tokens from the
devstack provider: each user sees only their own threads, and bad tokens get 401."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk.schema import Command

from devstack.identity.users import subject_for
from tests.server.conftest import HELLO, http_status, server_client

pytestmark = pytest.mark.server

ALICE = subject_for("alice@example.com")
BOB = subject_for("bob@example.com")


async def test_ok_answers_and_startup_time_is_reported(langgraph_server) -> None:
    response = httpx.get(langgraph_server.url + "/ok", timeout=5)
    assert response.status_code == 200
    assert langgraph_server.startup_seconds > 0


async def _alice_thread(alice) -> str:
    thread = await alice.threads.create(metadata={"topic": "isolation"})
    await alice.runs.wait(thread["thread_id"], "agent", input=HELLO)
    return thread["thread_id"]


async def test_each_user_sees_only_their_own_threads(alice, bob) -> None:
    thread_id = await _alice_thread(alice)
    bob_thread = await bob.threads.create(metadata={"owner": ALICE})

    # the owner is taken from the token, never from what the client claims
    assert bob_thread["metadata"]["owner"] != ALICE
    mine = await alice.threads.get(thread_id)
    assert mine["metadata"]["owner"] == ALICE
    state = await alice.threads.get_state(thread_id)
    assert state["values"]["messages"], "alice's run produced no messages"
    assert [r["thread_id"] for r in await alice.runs.list(thread_id)] == [thread_id]

    alice_ids = {t["thread_id"] for t in await alice.threads.search(limit=100)}
    bob_ids = {t["thread_id"] for t in await bob.threads.search(limit=100)}
    assert thread_id in alice_ids and thread_id not in bob_ids
    assert bob_thread["thread_id"] in bob_ids and bob_thread["thread_id"] not in alice_ids

    denied = (403, 404)
    assert await http_status(bob.threads.get(thread_id)) in denied
    assert await http_status(bob.threads.get_state(thread_id)) in denied
    assert await http_status(bob.threads.get_history(thread_id)) in denied
    assert await http_status(bob.threads.delete(thread_id)) in denied
    assert await http_status(bob.runs.create(thread_id, "agent", input=HELLO)) in denied
    assert await http_status(bob.runs.wait(thread_id, "agent", input=HELLO)) in denied
    assert (
        await http_status(bob.runs.create(thread_id, "agent", command=Command(resume={"ok": True})))
        in denied
    )
    runs = await alice.runs.list(thread_id)
    run_id = runs[0]["run_id"]
    assert await http_status(bob.runs.get(thread_id, run_id)) in denied
    assert await http_status(bob.runs.cancel(thread_id, run_id)) in denied
    bob_runs = await http_status(bob.runs.list(thread_id))
    if bob_runs == 200:  # a listing may answer empty instead of refusing
        assert await bob.runs.list(thread_id) == []
    else:
        assert bob_runs in denied

    # Alice's thread is untouched by all of that.
    assert len(await alice.runs.list(thread_id)) == 1
    assert (await alice.threads.get(thread_id))["thread_id"] == thread_id


async def test_state_edits_are_refused_even_to_the_owner(alice) -> None:
    thread_id = await _alice_thread(alice)
    before = await alice.threads.get_state(thread_id)
    status = await http_status(alice.threads.update_state(thread_id, {"messages": []}))
    assert status == 403
    assert await http_status(alice.threads.update(thread_id, metadata={"owner": "x"})) == 403
    edit = Command(resume="yes", update={"messages": []})
    assert await http_status(alice.runs.create(thread_id, "agent", command=edit)) == 403
    goto = Command(goto="tools")
    assert await http_status(alice.runs.create(thread_id, "agent", command=goto)) == 403
    after = await alice.threads.get_state(thread_id)
    assert after["values"] == before["values"]


async def test_assistants_are_shared_read_only_and_owned_when_created(alice, bob) -> None:
    system = await alice.assistants.search(graph_id="agent")
    assert any(a["metadata"].get("created_by") == "system" for a in system)
    mine = await alice.assistants.create("agent", name=f"alice-{uuid.uuid4().hex[:6]}")
    assert await http_status(bob.assistants.get(mine["assistant_id"])) in (403, 404)
    ids = {a["assistant_id"] for a in await bob.assistants.search(limit=100)}
    assert mine["assistant_id"] not in ids
    system_id = next(a for a in system if a["metadata"].get("created_by") == "system")
    assert await http_status(bob.assistants.delete(system_id["assistant_id"])) in (403, 404)


async def test_store_is_scoped_to_the_owner(alice, bob) -> None:
    mine = (ALICE, "notes")
    await alice.store.put_item(mine, "k", {"v": 1})
    assert (await alice.store.get_item(mine, "k"))["value"] == {"v": 1}
    assert await http_status(bob.store.get_item(mine, "k")) == 403
    assert await http_status(bob.store.put_item(mine, "k", {"v": 2})) == 403
    assert await http_status(bob.store.search_items(mine)) == 403
    assert (await alice.store.get_item(mine, "k"))["value"] == {"v": 1}


async def test_studio_header_is_refused_when_studio_is_disabled(langgraph_server) -> None:
    studio = server_client(langgraph_server, **{"x-auth-scheme": "langsmith"})
    assert await http_status(studio.threads.search()) in (401, 403)
    assert await http_status(studio.threads.create()) in (401, 403)


async def test_no_token_is_401(langgraph_server) -> None:
    anonymous = server_client(langgraph_server)
    assert await http_status(anonymous.threads.search()) == 401
    assert await http_status(anonymous.threads.create()) == 401
    response = httpx.post(
        langgraph_server.url + "/threads/search", json={}, headers={"Authorization": "Basic eDp5"}
    )
    assert response.status_code == 401


FORGERIES = [
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "alg_none",
    "hs256_with_public_key",
    "tampered",
    "unknown_kid",
    "garbage",
]


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_bad_tokens_are_401(langgraph_server, mint_token, forgery: str) -> None:
    token = getattr(mint_token, forgery)()
    client = server_client(langgraph_server, token)
    assert await http_status(client.threads.search()) == 401
    response = httpx.post(
        langgraph_server.url + "/threads",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 401
    body = response.text
    assert token not in body and "Traceback" not in body


async def test_a_valid_minted_token_is_accepted(langgraph_server, mint_token) -> None:
    # the control for the forgeries above: same minter, nothing wrong with it
    client = server_client(langgraph_server, mint_token.valid())
    assert await http_status(client.threads.search()) == 200
