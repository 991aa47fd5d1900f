"""Against real `warrant serve` processes (Aegra) on one PostgreSQL: several replicas lose no
approval and duplicate no action, a run left by a dead replica is recovered, and Aegra's gaps
are closed (other users' threads, state edits, forged server keys, the resume credential)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import psycopg
import pytest

from auth.approvals_ledger import ApprovalsLedger, ApprovalStatus
from deploy.resume_credential import resume_credential
from tests.deploy.conftest import replicas

pytestmark = [pytest.mark.server, pytest.mark.slow]


async def test_replicas_lose_no_approval_and_duplicate_no_action(
    devstack, pg_admin, tmp_path
) -> None:
    result = await replicas.run_one(
        devstack,
        tmp_path,
        pg_admin,
        kind="aegra",
        threads=6,
        replicas=2,
        seed=5,
        rate=4.0,
        kill="quiescent",  # killed between runs: every approval must still complete
        settle_seconds=180.0,
    )
    assert result["pushes"] == 6, result
    assert result["gists"] == 6, result
    assert result["duplicates"] == 0 and result["lost"] == 0, result
    assert result["ledger_statuses"] == {"done": 6}, result
    assert result["pings_forwarded"] == 6 and result["replica_restart_seconds"] is not None


@pytest.fixture(scope="module")
def served(devstack, pg_admin, tmp_path_factory):
    """Two replicas on a fresh database; a dead replica's run is recovered after 3 s."""
    folder = tmp_path_factory.mktemp("served")
    loop = asyncio.new_event_loop()
    with replicas.fresh_database(pg_admin) as url:
        fleet = replicas.fleet(
            devstack,
            folder,
            2,
            kind="aegra",
            database_url=url,
            extra_env={"WARRANT_ORPHAN_RUN_SECONDS": "3", "WARRANT_REPLICA_HEARTBEAT_SECONDS": "1"},
        )
        servers = loop.run_until_complete(fleet.__aenter__())
        try:
            yield servers, url
        finally:
            loop.run_until_complete(fleet.__aexit__(None, None, None))
            loop.close()


def _bearer(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.access_token}"}


async def _thread(http: httpx.AsyncClient, url: str, tokens) -> str:
    response = await http.post(url + "/threads", json={}, headers=_bearer(tokens))
    assert response.status_code == 200, response.text
    return response.json()["thread_id"]


async def test_aegra_refuses_what_warrant_refuses(served, alice_tokens, bob_tokens) -> None:
    servers, database_url = served
    url = servers[0].url
    ask = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    async with httpx.AsyncClient(timeout=60) as http:
        assert (await http.post(url + "/threads", json={})).status_code == 401
        tid = await _thread(http, url, alice_tokens)
        runs = f"{url}/threads/{tid}/runs"

        # Another user's thread does not exist for bob, on every route that starts a run.
        assert (
            await http.get(f"{url}/threads/{tid}", headers=_bearer(bob_tokens))
        ).status_code == 404
        for route in ("", "/wait", "/stream"):
            answer = await http.post(runs + route, json=ask, headers=_bearer(bob_tokens))
            assert answer.status_code == 404, (route, answer.text)

        # State edits, forged server keys and foreign context are refused on every run route.
        forged = [
            {**ask, "command": {"update": {"messages": []}}, "input": None},
            {**ask, "config": {"configurable": {"langgraph_auth_user": {"identity": "bob"}}}},
            {**ask, "context": {"langgraph_auth_user": {"identity": "bob"}}},
            {**ask, "context": {"subject_token": "stolen"}},
            {**ask, "checkpoint": {"checkpoint_id": "1ef"}},
        ]
        for body in forged:
            for route in ("", "/wait", "/stream"):
                answer = await http.post(runs + route, json=body, headers=_bearer(alice_tokens))
                assert answer.status_code == 403, (body, route, answer.text)
        edit = await http.post(
            f"{url}/threads/{tid}/state",
            json={"values": {"user": None}},
            headers=_bearer(alice_tokens),
        )
        assert edit.status_code == 403

        # The server's resume credential: only a nudge on its own approval's thread.
        ledger = ApprovalsLedger(database_url)
        try:
            record, _ = await ledger.reserve(
                user_id=_sub(alice_tokens),
                thread_id=tid,
                tool_call_id=f"call-{uuid.uuid4().hex[:6]}",
                tool_name="create_public_gist",
                action_digest="b" * 64,
                binding_message="Create public gist x.md",
            )
        finally:
            await ledger.close()
        resume = {"Authorization": resume_credential(record.id)}
        assert (await http.post(url + "/threads", json={}, headers=resume)).status_code == 403
        assert (await http.get(url + "/threads", headers=resume)).status_code == 403
        assert (await http.post(runs + "/wait", json=ask, headers=resume)).status_code == 403
        assert (await http.post(runs, json=ask, headers=resume)).status_code == 403
        other = await _thread(http, url, alice_tokens)
        nudge = {
            "assistant_id": "agent",
            "command": {"resume": {"wake": True, "approval_id": record.id}},
        }
        assert (
            await http.post(f"{url}/threads/{other}/runs", json=nudge, headers=resume)
        ).status_code == 403
        bad = {"Authorization": resume["Authorization"][:-4] + "0000"}
        assert (await http.post(runs, json=nudge, headers=bad)).status_code == 401


def _sub(tokens) -> str:
    from tests.approvals.conftest import subject_of

    return subject_of(tokens.access_token)


async def test_a_run_left_by_a_dead_replica_is_recovered(
    served, devstack, alice_tokens, use_devstack
) -> None:
    from auth.token_vault import get_token_vault
    from devstack.identity.connected_accounts import connect_in_browser

    servers, database_url = served
    ciba = devstack.provider.extensions["ciba"]
    agent_id = devstack.settings.agent_client_id
    before = ciba.delivery(agent_id)
    sub = _sub(alice_tokens)
    password = use_devstack.alice_password.get_secret_value()
    await connect_in_browser(
        get_token_vault().connect_url("github", ["gist"]),
        email="alice@example.com",
        password=password,
        github_login="alice",
        github_password=password,
    )
    marker = f"orphan-{uuid.uuid4().hex}"
    url = servers[1].url
    try:
        ciba.set_delivery(agent_id, "ping", url + "/warrant/ciba/callback")
        async with httpx.AsyncClient(timeout=120) as http:
            tid = await _thread(http, url, alice_tokens)
            ask = f'create a public gist named orphan.md with content "{marker}"'
            answer = await http.post(
                f"{url}/threads/{tid}/runs/wait",
                json={
                    "assistant_id": "agent",
                    "input": {"messages": [{"role": "user", "content": ask}]},
                },
                headers=_bearer(alice_tokens),
            )
            assert answer.status_code == 200, answer.text
        ledger = ApprovalsLedger(database_url)
        try:
            [record] = [
                r for r in await ledger.history(user_id=sub, limit=20) if r.thread_id == tid
            ]
            # What a replica killed in the middle of a resumed run leaves behind in Aegra's
            # tables: the run `running`, the thread `busy`, and no heartbeat for that run.
            dead_run = str(uuid.uuid4())
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                await conn.execute(
                    "INSERT INTO runs (run_id, thread_id, status, user_id, created_at, updated_at)"
                    " VALUES (%s, %s, 'running', %s, now() - interval '1 minute',"
                    " now() - interval '1 minute')",
                    (dead_run, tid, sub),
                )
                await conn.execute("UPDATE thread SET status = 'busy' WHERE thread_id = %s", (tid,))
                # Its last heartbeat names a replica that is alive again (restarted under the
                # same name): that must not vouch for a run of its previous life.
                await conn.execute(
                    "INSERT INTO warrant_replica_runs (run_id, replica, seen_at)"
                    " VALUES (%s, 'replica-0', extract(epoch from now()) - 60)",
                    (dead_run,),
                )
            [request] = [r for r in ciba.pending(sub) if r.auth_req_id == record.auth_req_id]
            ciba.decide(request.id, sub, True)  # the ping's wake meets a busy thread, and waits
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                current = await ledger.get(record.id)
                if current.is_final:
                    break
                await asyncio.sleep(0.2)
            assert current.status is ApprovalStatus.DONE, current
        finally:
            await ledger.close()
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            row = await (
                await conn.execute("SELECT status FROM runs WHERE run_id = %s", (dead_run,))
            ).fetchone()
        assert row[0] == "error"
        assert replicas.gist_markers(devstack)[marker] == 1
    finally:
        ciba.set_delivery(agent_id, *before)
        devstack.provider.extensions["connected_accounts"].store.delete(sub, connection="github")
        get_token_vault().clear()
