"""Against a real `langgraph dev`: a forged resume through the server API does nothing, and the
user's approval at the provider resumes the thread by ping, with no client action at all."""

from __future__ import annotations

import time

import pytest
from langgraph_sdk import get_sync_client

from auth.token_vault import get_token_vault
from graph.callbacks import CALLBACK_PATH
from tests.approvals.conftest import World, connect_alice_to_github, subject_of
from tests.server.conftest import interrupt_values, run_langgraph_dev

pytestmark = pytest.mark.server


async def test_an_approval_by_ping_resumes_the_thread_on_the_server(
    devstack, use_devstack, alice_tokens, tmp_path
) -> None:
    ciba = devstack.provider.extensions["ciba"]
    agent_id = devstack.settings.agent_client_id
    before = ciba.delivery(agent_id)
    sub = subject_of(alice_tokens.access_token)
    vault = get_token_vault()
    password = use_devstack.alice_password.get_secret_value()
    await connect_alice_to_github(password)
    world = World(devstack, use_devstack, sub, None, f"warrant-server-{time.time_ns()}")
    try:
        with run_langgraph_dev(
            devstack, tmp_path, extra_env={"WARRANT_CIBA_DELIVERY_MODE": "ping"}
        ) as server:
            ciba.set_delivery(agent_id, "ping", server.url + CALLBACK_PATH)
            client = get_sync_client(
                url=server.url,
                api_key=None,
                headers={"Authorization": f"Bearer {alice_tokens.access_token}"},
            )
            thread = client.threads.create()
            tid = thread["thread_id"]
            ask = world.ask("server.md")["messages"][0][1]
            client.runs.wait(tid, "agent", input={"messages": [{"role": "user", "content": ask}]})
            [pending] = interrupt_values(client.threads.get_state(tid))
            assert pending["type"] == "approval_pending"

            # A forged resume through the server API: the node asks the ledger and the
            # provider, and the thread keeps waiting.
            client.runs.wait(tid, "agent", command={"resume": "approved"})
            [still] = interrupt_values(client.threads.get_state(tid))
            assert still["approval_id"] == pending["approval_id"]
            assert world.gists() == 0
            runs_before = len(client.runs.list(tid))

            [request] = [
                r for r in ciba.pending(sub) if r.binding_message == pending["binding_message"]
            ]
            ciba.decide(request.id, sub, True)  # alice approves on her "phone"; nothing else

            deadline = time.monotonic() + 30
            state = client.threads.get_state(tid)
            while time.monotonic() < deadline:
                state = client.threads.get_state(tid)
                if not interrupt_values(state) and client.threads.get(tid)["status"] == "idle":
                    break
                time.sleep(0.1)
            assert not interrupt_values(state), "the ping did not resume the thread"
            last = state["values"]["messages"][-1]
            assert last["type"] == "ai" and "https://gist.github.com/" in last["content"]
            assert world.gists() == 1
            assert ciba.stats(request.id)["pings"] == 1
            # The resume was a run the server started itself, on the callback.
            assert len(client.runs.list(tid)) == runs_before + 1
    finally:
        ciba.set_delivery(agent_id, *before)
        devstack.provider.extensions["connected_accounts"].store.delete(sub, connection="github")
        vault.clear()
