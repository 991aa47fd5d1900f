"""Cross-process wake claims: of many claimants on one approval, exactly one wins; a lease
ends on release or expiry; a restarted replica frees what it held; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from auth.approvals_claims import ApprovalClaims
from auth.approvals_ledger import ApprovalsLedger
from tests.approvals.pending import pending_approval


async def _seed(ledger: ApprovalsLedger, n: int = 3) -> list[str]:
    ids = []
    for i in range(n):
        record = await pending_approval(
            ledger,
            user_id=f"user-{i}",
            thread_id=f"thread-{i}",
            binding_message=f"Create public gist {i}.md",
            digest="a" * 64,
            expires_at=9e9,
            interval=0.0,
        )
        ids.append(record.id)
    return ids


@pytest.fixture(params=["sqlite", "postgres"])
async def ledgers(request, tmp_path):
    """Four ledger objects on one database: four 'processes', each with its own connection."""
    if request.param == "sqlite":
        location = str(tmp_path / "ledger.sqlite3")
    else:
        location = request.getfixturevalue("pg_database")
    opened = [ApprovalsLedger(location) for _ in range(4)]
    # A table per test on PostgreSQL (the session database is shared): start empty.
    await opened[0]._db.execute("DELETE FROM warrant_approvals")
    claims = ApprovalClaims(opened[0], owner="setup")
    await claims.holder("")
    await opened[0]._db.execute("DELETE FROM warrant_approval_claims")
    try:
        yield opened
    finally:
        for ledger in opened:
            await ledger.close()


async def test_one_claimant_wins_among_concurrent_processes(ledgers) -> None:
    [approval, *_] = await _seed(ledgers[0])
    claimants = [ApprovalClaims(ledger, owner=f"replica-{i}") for i, ledger in enumerate(ledgers)]
    for _ in range(5):
        won = await asyncio.gather(*(c.claim(approval, 30.0) for c in claimants))
        assert sum(won) == 1
        winner = claimants[won.index(True)]
        assert await claimants[0].holder(approval) == winner.owner
        # Not re-entrant: the holder's own second claim is refused too.
        assert not await winner.claim(approval, 30.0)
        await winner.release(approval)
        assert await claimants[0].holder(approval) is None


async def test_an_expired_lease_is_free_and_a_restarted_owner_frees_its_own(ledgers) -> None:
    [first, second, _] = await _seed(ledgers[0])
    now = [1000.0]
    dead = ApprovalClaims(ledgers[0], owner="replica-0", clock=lambda: now[0])
    live = ApprovalClaims(ledgers[1], owner="replica-1", clock=lambda: now[0])
    assert await dead.claim(first, 10.0) and await dead.claim(second, 10.0)
    assert not await live.claim(first, 10.0)
    now[0] += 10.5  # the lease ran out (its holder died without releasing)
    assert await live.claim(first, 10.0)
    # replica-0 restarts: what its previous life held is free at once, others' leases stay.
    assert await ApprovalClaims(ledgers[2], owner="replica-0").release_owner("replica-0") == 1
    assert await live.claim(second, 10.0)
    assert await dead.holder(first) == "replica-1"
    # Releasing is for the holder only.
    await dead.release(first)
    assert await dead.holder(first) == "replica-1"


async def test_claim_due_splits_the_work_list_between_pollers(ledgers) -> None:
    ids = await _seed(ledgers[0], n=6)
    pollers = [ApprovalClaims(ledger, owner=f"replica-{i}") for i, ledger in enumerate(ledgers)]
    taken = await asyncio.gather(
        *(p.claim_due(9e9, lambda r: 30.0, prefix="poll:") for p in pollers)
    )
    everyone = [r.id for batch in taken for r in batch]
    assert sorted(everyone) == sorted(ids)  # each due request to exactly one poller
    # The poller's claim is apart from the wake claim on the same approval.
    assert await pollers[0].claim(ids[0], 30.0)
