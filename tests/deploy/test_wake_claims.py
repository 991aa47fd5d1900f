"""Waking under claims: a second wake of the same approval, from anywhere, does not resume the
thread again while the first holds it; a ping arriving meanwhile is served by the holder; two
pollers sharing a ledger wake each due request once."""

from __future__ import annotations

import asyncio
import time

from auth.approvals_ledger import ApprovalRecord, ApprovalsLedger
from graph.resumer import ApprovalPoller, ResumeResult, wake
from tests.approvals.pending import pending_approval


async def _pending(ledger: ApprovalsLedger, name: str) -> ApprovalRecord:
    return await pending_approval(
        ledger,
        thread_id=f"thread-{name}",
        binding_message=f"Create public gist {name}.md",
        digest="c" * 64,
    )


class NodeLike:
    """Resumes as the approval node would: it pushes the next check forward (still pending).
    On its first resume a ping arrives and a second waker tries its luck."""

    def __init__(self, ledger: ApprovalsLedger) -> None:
        self.ledger = ledger
        self.resumes = 0
        self.rival: ResumeResult | None = None

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        self.resumes += 1
        await self.ledger.set_interval(record.id, 5.0, time.time() + 60)
        if self.resumes == 1:
            await asyncio.sleep(0.01)
            await self.ledger.set_interval(record.id, 5.0, time.time())  # the ping marks it due
            self.rival = await wake(record, self, ledger=self.ledger)  # and its wake runs
        return ResumeResult.RESUMED


async def test_a_wake_during_a_wake_is_refused_and_its_ping_is_not_lost(tmp_path) -> None:
    ledger = ApprovalsLedger(tmp_path / "ledger.sqlite3")
    try:
        record = await _pending(ledger, "a")
        node = NodeLike(ledger)
        assert await wake(record, node, ledger=ledger) is ResumeResult.RESUMED
        assert node.rival is ResumeResult.BUSY  # refused at once: the claim was held
        assert node.resumes == 2  # the holder served the ping that arrived meanwhile
    finally:
        await ledger.close()


class Counter:
    def __init__(self) -> None:
        self.woken: list[str] = []

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        self.woken.append(record.id)
        await asyncio.sleep(0.05)
        return ResumeResult.RESUMED


async def test_two_pollers_on_one_ledger_wake_each_due_request_once(tmp_path) -> None:
    path = tmp_path / "ledger.sqlite3"
    first, second = ApprovalsLedger(path), ApprovalsLedger(path)
    try:
        ids = [(await _pending(first, str(i))).id for i in range(5)]
        for approval_id in ids:
            await first.set_interval(approval_id, 5.0, time.time() - 1)
        counters = [Counter(), Counter()]
        pollers = [
            ApprovalPoller(counters[0], ledger=first),
            ApprovalPoller(counters[1], ledger=second),
        ]
        await asyncio.gather(*(p.run_once() for p in pollers))
        woken = counters[0].woken + counters[1].woken
        assert sorted(woken) == sorted(ids)
        await asyncio.gather(*(p.run_once() for p in pollers))  # within the interval: nothing
        assert len(counters[0].woken + counters[1].woken) == 5
    finally:
        await first.close()
        await second.close()
