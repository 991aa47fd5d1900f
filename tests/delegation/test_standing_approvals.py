"""Standing approvals: bounded by count and time, counted atomically, revocable, FGA-checked."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import pytest

from auth.audit import AuditEvent, AuditLog, audit_location
from auth.ciba import ApprovalDenied, ApprovalPending, ApprovalRequest
from auth.delegation import agent_principal
from auth.fga.client import TupleKey
from auth.standing_approvals import (
    StandingApprovalError,
    StandingApprovals,
    request_standing_approval,
)
from tests.delegation.conftest import AGENT, ALICE, BOB

GIST = "create_public_gist"


@pytest.fixture
async def store(tmp_path, fga, clock):
    s = StandingApprovals(str(tmp_path / "approvals.sqlite3"), fga, clock=clock)
    yield s
    await s.close()


async def _grant(store, clock, *, max_uses=2, seconds=600, thread=None, user=ALICE, sub=None):
    return await store.record_approved(
        user_id=sub or "auth0|alice",
        fga_user=user,
        tool_name=GIST,
        max_uses=max_uses,
        expires_at=clock.now + seconds,
        thread_id=thread,
        reason="test",
    )


async def _use(store, call: str, *, thread="t1", sub="auth0|alice", user=ALICE, tool=GIST):
    return await store.use(
        user_id=sub,
        fga_user=user,
        thread_id=thread,
        tool_call_id=call,
        tool_name=tool,
        action_digest="d" * 64,
    )


async def test_two_uses_then_none(store, clock):
    granted = await _grant(store, clock)
    assert granted.remaining(clock.now) == 2
    assert (await _use(store, "c1")).status == "claimed"
    second = await _use(store, "c2")
    assert second.status == "claimed" and second.standing.used == 2
    assert (await _use(store, "c3")).status == "none"  # past the limit: ask with CIBA


async def test_one_tool_call_takes_at_most_one_use(store, clock):
    await _grant(store, clock, max_uses=5)
    assert (await _use(store, "c1")).status == "claimed"
    again = await _use(store, "c1")  # a resume or restart of the same call
    assert again.status == "executing"
    await store.finish(user_id="auth0|alice", thread_id="t1", tool_call_id="c1", ok=True)
    assert (await _use(store, "c1")).status == "done"
    (row,) = await store.list("auth0|alice")
    assert row.used == 1


async def test_concurrent_uses_never_exceed_the_limit(tmp_path, fga, clock):
    location = str(tmp_path / "approvals.sqlite3")
    # several connections to one file: as separate processes would be
    stores = [StandingApprovals(location, fga, clock=clock) for _ in range(4)]
    await _grant(stores[0], clock, max_uses=2)
    results = await asyncio.gather(*(_use(stores[i % 4], f"c{i}") for i in range(24)))
    assert sum(r.status == "claimed" for r in results) == 2
    (row,) = await stores[0].list()
    assert row.used == 2
    for s in stores:
        await s.close()


async def test_concurrent_runs_of_the_same_call_take_one_use(tmp_path, fga, clock):
    location = str(tmp_path / "approvals.sqlite3")
    stores = [StandingApprovals(location, fga, clock=clock) for _ in range(4)]
    await _grant(stores[0], clock, max_uses=10)
    results = await asyncio.gather(*(_use(s, "same") for s in stores))
    assert sum(r.status == "claimed" for r in results) == 1
    (row,) = await stores[0].list()
    assert row.used == 1  # a losing run gave its use back
    for s in stores:
        await s.close()


async def test_expired_grant_is_not_used(store, clock):
    await _grant(store, clock, seconds=60)
    clock.now += 61
    assert (await _use(store, "c1")).status == "none"


async def test_revocation_stops_the_next_action(store, clock, fga):
    granted = await _grant(store, clock, max_uses=3)
    assert (await _use(store, "c1")).status == "claimed"
    with pytest.raises(StandingApprovalError):
        await store.revoke(granted.id, "auth0|bob")  # not bob's to revoke
    await store.revoke(granted.id, "auth0|alice")
    assert (await _use(store, "c2")).status == "none"
    principal = agent_principal(AGENT, ALICE)
    assert await fga.read(principal, "grantee", f"standing_approval:{granted.id}") == []


async def test_tuple_removed_in_fga_alone_stops_it(store, clock, fga):
    granted = await _grant(store, clock)
    await fga.write(
        deletes=[
            TupleKey(agent_principal(AGENT, ALICE), "grantee", f"standing_approval:{granted.id}")
        ]
    )
    assert (await _use(store, "c1")).status == "none"


async def test_a_row_forged_without_the_fga_tuple_is_not_used(store, clock, fga):
    granted = await _grant(store, clock)
    # a forged counter reset in the database: FGA still gets `used` and the tuple's max
    await store._db.execute(
        "UPDATE warrant_standing_approvals SET max_uses = 50 WHERE id = ?", (granted.id,)
    )
    for i in range(2):
        assert (await _use(store, f"c{i}")).status == "claimed"
    assert (await _use(store, "c9")).status == "none"  # FGA's max_uses (2) still holds


async def test_other_users_threads_and_tools_are_not_covered(store, clock):
    await _grant(store, clock, thread="t1")
    assert (await _use(store, "c1", thread="t2")).status == "none"
    assert (await _use(store, "c2", tool="delete_repo")).status == "none"
    assert (await _use(store, "c3", sub="auth0|bob", user=BOB)).status == "none"
    assert (await _use(store, "c4", thread="t1")).status == "claimed"


@pytest.mark.parametrize("max_uses,seconds", [(0, 60), (101, 60), (2, -1), (2, 90000)])
async def test_bad_limits_are_refused(store, clock, max_uses, seconds):
    with pytest.raises(StandingApprovalError):
        await _grant(store, clock, max_uses=max_uses, seconds=seconds)


class FakeCIBA:
    """Records the request; answers pending once, then `answer`."""

    def __init__(self, answer: Exception | None = None) -> None:
        self.answer = answer
        self.sent: dict = {}
        self.polls = 0

    async def start(self, user_id, binding_message, scopes, **kw):
        self.sent = {"user_id": user_id, "binding_message": binding_message, **kw}
        return ApprovalRequest("req-1", user_id, binding_message, expires_at=9e12, interval=0)

    async def poll(self, request):
        self.polls += 1
        if self.polls == 1:
            raise ApprovalPending(0)
        if self.answer is not None:
            raise self.answer
        return object()


async def test_request_shows_the_limits_and_records_on_approval(store, clock):
    ciba = FakeCIBA()
    granted = await request_standing_approval(
        ciba,
        store,
        user_id="auth0|alice",
        fga_user=ALICE,
        tool_name=GIST,
        max_uses=2,
        seconds=900,
        thread_id="t1",
    )
    (details,) = ciba.sent["authorization_details"]
    assert details["type"] == "warrant_standing_approval" and details["tool"] == GIST
    assert details["max_uses"] == 2 and details["thread"] == "t1" and details["agent"] == AGENT
    assert "Up to 2" in ciba.sent["binding_message"]
    assert granted.max_uses == 2 and granted.expires_at == clock.now + 900
    log = AuditLog(audit_location())
    events = [r.event for r in await log.records()]
    await log.close()
    assert events == [AuditEvent.APPROVAL_REQUESTED, AuditEvent.STANDING_APPROVAL_GRANTED]


async def test_denied_request_records_nothing(store, clock):
    with pytest.raises(ApprovalDenied):
        await request_standing_approval(
            FakeCIBA(ApprovalDenied()),
            store,
            user_id="auth0|alice",
            fga_user=ALICE,
            tool_name=GIST,
            max_uses=2,
            seconds=900,
        )
    assert await store.list() == []


POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def test_postgres_concurrent_uses_never_exceed_the_limit(fga, clock):
    try:
        import psycopg

        conn = psycopg.connect(POSTGRES_URL, connect_timeout=2, autocommit=True)
    except Exception:
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_URL}")
    schema = f"standing_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    stores = [StandingApprovals(url, fga, clock=clock) for _ in range(3)]
    try:
        await _grant(stores[0], clock, max_uses=2)
        results = await asyncio.gather(*(_use(stores[i % 3], f"c{i}") for i in range(18)))
        assert sum(r.status == "claimed" for r in results) == 2
        (row,) = await stores[0].list()
        assert row.used == 2
    finally:
        for s in stores:
            await s.close()
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def test_cli_lists_and_revokes(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from settings import get_settings

    async def me():
        return "auth0|alice", ALICE

    monkeypatch.setattr("cli.standing_approvals._me", me)
    runner = CliRunner()
    with get_settings.override(data_dir=tmp_path, approvals_db=None, fga_backend="local"):

        async def seed():
            from auth.fga.factory import make_fga_client
            from auth.standing_approvals import open_standing_approvals
            from vectorstore.access_model import ensure_document_model

            fga = make_fga_client()
            await ensure_document_model(fga)
            store = open_standing_approvals(fga)
            import time

            granted = await store.record_approved(
                user_id="auth0|alice",
                fga_user=ALICE,
                tool_name=GIST,
                max_uses=2,
                expires_at=time.time() + 600,
                thread_id=None,
                reason="test",
            )
            await store.close()
            await fga.close()
            return granted.id

        standing_id = asyncio.run(seed())
        listed = runner.invoke(app, ["approvals", "standing-list", "--json"])
        assert listed.exit_code == 0, listed.output
        (row,) = json.loads(listed.output)
        assert row["id"] == standing_id and row["status"] == "active"
        done = runner.invoke(app, ["approvals", "revoke", standing_id])
        assert done.exit_code == 0, done.output
        (row,) = json.loads(runner.invoke(app, ["approvals", "standing-list", "--json"]).output)
        assert row["status"] == "revoked"
        missing = runner.invoke(app, ["approvals", "revoke", "nope"])
        assert missing.exit_code == 1 and "no standing approval" in missing.output
