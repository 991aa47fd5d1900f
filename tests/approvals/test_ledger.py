"""The approvals ledger against SQLite and a real PostgreSQL: dedup, at-most-once, work list."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auth.approvals_ledger import (
    ApprovalsLedger,
    ApprovalStatus,
    LedgerError,
    action_digest,
)
from tests.approvals.postgres import POSTGRES_URL, postgres_reachable


@pytest.fixture(params=["sqlite", "postgres"])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApprovalsLedger]:
    if request.param == "postgres":
        if not postgres_reachable():
            pytest.skip(f"no PostgreSQL reachable at {POSTGRES_URL}")
        book = ApprovalsLedger(POSTGRES_URL)
    else:
        book = ApprovalsLedger(tmp_path / "ledger.sqlite")
    yield book
    await book.close()


def _key() -> dict[str, str]:
    # Unique per test so that the shared PostgreSQL table never mixes tests.
    return {
        "user_id": f"auth0|{uuid.uuid4().hex[:8]}",
        "thread_id": uuid.uuid4().hex,
        "tool_call_id": f"call_{uuid.uuid4().hex[:6]}",
    }


def _reserve_args(**overrides: str) -> dict[str, str]:
    args = {
        **_key(),
        "tool_name": "create_public_gist",
        "action_digest": action_digest("create_public_gist", {"content": "x"}),
        "binding_message": "Create gist x",
    }
    args.update(overrides)
    return args


async def test_reserve_is_once_per_tool_call(ledger: ApprovalsLedger) -> None:
    args = _reserve_args()
    first, created = await ledger.reserve(**args)
    again, created_again = await ledger.reserve(**args)
    assert created is True
    assert created_again is False
    assert again.id == first.id
    assert first.status is ApprovalStatus.PENDING


async def test_concurrent_reservations_push_once(ledger: ApprovalsLedger) -> None:
    args = _reserve_args()
    results = await asyncio.gather(*(ledger.reserve(**args) for _ in range(8)))
    assert sum(created for _, created in results) == 1
    assert len({record.id for record, _ in results}) == 1


async def test_same_call_with_other_arguments_is_refused(ledger: ApprovalsLedger) -> None:
    args = _reserve_args()
    await ledger.reserve(**args)
    args["action_digest"] = action_digest("create_public_gist", {"content": "y"})
    with pytest.raises(LedgerError, match="different arguments"):
        await ledger.reserve(**args)


async def test_execution_is_claimed_at_most_once(ledger: ApprovalsLedger) -> None:
    record, _ = await ledger.reserve(**_reserve_args())
    assert await ledger.claim_execution(record.id) is False  # not approved yet
    assert await ledger.transition(record.id, ApprovalStatus.APPROVED) is True
    claims = await asyncio.gather(*(ledger.claim_execution(record.id) for _ in range(10)))
    assert claims.count(True) == 1
    assert await ledger.transition(record.id, ApprovalStatus.DONE, outcome="https://gist/1")
    done = await ledger.get(record.id)
    assert done is not None and done.status is ApprovalStatus.DONE and done.is_final
    assert done.outcome == "https://gist/1"
    assert await ledger.claim_execution(record.id) is False


async def test_final_states_do_not_move(ledger: ApprovalsLedger) -> None:
    record, _ = await ledger.reserve(**_reserve_args())
    assert await ledger.transition(record.id, ApprovalStatus.DENIED)
    assert await ledger.transition(record.id, ApprovalStatus.APPROVED) is False
    assert await ledger.claim_execution(record.id) is False
    with pytest.raises(LedgerError):
        await ledger.transition(record.id, ApprovalStatus.DONE, expected=ApprovalStatus.PENDING)


async def test_work_list_and_lookup_by_auth_req_id(ledger: ApprovalsLedger) -> None:
    record, _ = await ledger.reserve(**_reserve_args())
    assert record.id not in {r.id for r in await ledger.due_for_poll()}  # not pushed yet
    req_id = f"req-{uuid.uuid4().hex}"
    attached = await ledger.attach_request(
        record.id, auth_req_id=req_id, expires_at=9e9, interval=0
    )
    assert attached.auth_req_id == req_id
    assert (await ledger.find_by_auth_req_id(req_id)).id == record.id
    assert record.id in {r.id for r in await ledger.due_for_poll(now=time.time() + 1)}
    await ledger.set_interval(record.id, 10.0, next_poll_at=9e9)
    assert record.id not in {r.id for r in await ledger.due_for_poll(now=time.time() + 1)}
    assert await ledger.find_by_auth_req_id("unknown") is None


async def test_history_is_per_user_and_newest_first(ledger: ApprovalsLedger) -> None:
    user = f"auth0|{uuid.uuid4().hex[:8]}"
    ids = []
    for n in range(3):
        record, _ = await ledger.reserve(**_reserve_args(user_id=user, tool_call_id=f"c{n}"))
        ids.append(record.id)
    history = await ledger.history(user_id=user)
    assert [r.id for r in history] == list(reversed(ids))
    assert all(r.user_id == user for r in history)
    assert "token" not in " ".join(str(r.as_dict()) for r in history).lower()


def _reserve_in_process(path: str, args: dict[str, str], out: multiprocessing.Queue) -> None:
    async def go() -> None:
        book = ApprovalsLedger(path)
        _, created = await book.reserve(**args)
        await book.close()
        out.put(created)

    asyncio.run(go())


def test_restart_finds_the_request_instead_of_pushing_again(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite")
    args = _reserve_args()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_reserve_in_process, args=(path, args, out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert sorted(out.get(timeout=5) for _ in procs) == [False, False, True]


async def test_a_ledger_from_before_polled_at_is_upgraded_on_open(tmp_path) -> None:
    import sqlite3

    from auth.approvals_ledger import _SCHEMA

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(_SCHEMA.replace("    polled_at DOUBLE PRECISION,\n", ""))
    old.execute(
        "INSERT INTO warrant_approvals (id, user_id, thread_id, tool_call_id, tool_name,"
        " action_digest, binding_message, status, created_at, updated_at)"
        " VALUES ('a1', 'u', 't', 'c', 'tool', 'd', 'Approve', 'pending', 1, 1)"
    )
    old.commit()
    old.close()
    ledger = ApprovalsLedger(path)
    try:
        record = await ledger.get("a1")
        assert record is not None and record.polled_at is None
        await ledger.mark_polled("a1")
        assert (await ledger.get("a1")).polled_at is not None
        await ledger.mark_polled("a1", in_flight=False)
        assert (await ledger.get("a1")).polled_at is None
    finally:
        await ledger.close()
