"""Cross-process claims on approvals: each pending approval is woken by one process at a time.

Several server processes share one ledger; a ping can reach any of them (sometimes twice), and
every process runs a poller. Before waking a thread, a process claims the approval for a lease:
one conditional upsert (`INSERT ... ON CONFLICT DO UPDATE ... WHERE until <= now`), atomic in
PostgreSQL and in SQLite, so exactly one caller wins until the lease ends or is released. A
process that dies holding a claim blocks nobody for longer than the lease.

The claim only decides who *wakes* the thread; the at-most-once action still rests on the
ledger's `claim_execution`, so a lease that ends too early costs a wasted wake, never a second
action.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from auth.approvals_ledger import ApprovalRecord, ApprovalsLedger
from auth.sql_store import Schema

_SCHEMA = Schema.portable(
    (
        "CREATE TABLE IF NOT EXISTS warrant_approval_claims ("
        " approval_id TEXT PRIMARY KEY,"
        " owner TEXT NOT NULL,"
        " until DOUBLE PRECISION NOT NULL)",
    )
)


def process_owner() -> str:
    """This process's name among those sharing the ledger: its configured replica id (kept
    across restarts, so a restarted replica can free what its previous life held), else host
    and pid."""
    from settings import get_settings

    return get_settings().replica_id or f"{socket.gethostname()}:{os.getpid()}"


class ApprovalClaims:
    """Leases on approvals, stored next to the ledger's records (same database)."""

    def __init__(
        self,
        ledger: ApprovalsLedger,
        *,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        # The ledger's own connection: claims live in the ledger's database, whichever it is.
        self._db = ledger._db
        self.owner = owner or process_owner()
        self._clock = clock

    async def _setup(self) -> None:
        await self._db.ensure(_SCHEMA)

    async def claim(self, approval_id: str, lease_seconds: float) -> bool:
        """Take the approval (or any key naming it) for `lease_seconds` unless someone holds an
        unexpired lease; True for the one caller that holds it now. Not re-entrant: a second
        task of this same process is refused too, so no process wakes a thread twice at once."""
        await self._setup()
        now = self._clock()
        changed = await self._db.execute(
            "INSERT INTO warrant_approval_claims (approval_id, owner, until) VALUES (?, ?, ?)"
            " ON CONFLICT (approval_id) DO UPDATE SET owner = excluded.owner,"
            " until = excluded.until"
            " WHERE warrant_approval_claims.until <= ?",
            (approval_id, self.owner, now + max(lease_seconds, 0.0), now),
        )
        return changed == 1

    async def release(self, approval_id: str) -> None:
        """Give the approval back (only if this owner still holds it)."""
        await self._setup()
        await self._db.execute(
            "DELETE FROM warrant_approval_claims WHERE approval_id = ? AND owner = ?",
            (approval_id, self.owner),
        )

    async def release_owner(self, owner: str) -> int:
        """Free every lease `owner` holds (a replica that died, or restarts); how many."""
        await self._setup()
        return await self._db.execute(
            "DELETE FROM warrant_approval_claims WHERE owner = ?", (owner,)
        )

    async def holder(self, approval_id: str) -> str | None:
        """Who holds an unexpired lease on the approval, if anyone."""
        await self._setup()
        rows = await self._db.fetch(
            "SELECT owner FROM warrant_approval_claims WHERE approval_id = ? AND until > ?",
            (approval_id, self._clock()),
        )
        return str(rows[0][0]) if rows else None

    async def claim_due(
        self,
        cutoff: float,
        lease: Callable[[ApprovalRecord], float],
        *,
        prefix: str = "",
        limit: int = 100,
    ) -> list[ApprovalRecord]:
        """The due requests (`next_poll_at <= cutoff`) this process won a lease on; `prefix`
        keeps these leases apart from others on the same approvals (`poll:` for the poller)."""
        won = []
        for record in await self._ledger.due_for_poll(cutoff, limit=limit):
            if await self.claim(prefix + record.id, lease(record)):
                won.append(record)
        return won

    async def forget_settled(self, older_than: float = 3600.0) -> int:
        """Drop leases that ended long ago (housekeeping; expired leases are already free)."""
        await self._setup()
        return await self._db.execute(
            "DELETE FROM warrant_approval_claims WHERE until < ?", (self._clock() - older_than,)
        )


_claims: dict[int, tuple[ApprovalsLedger, ApprovalClaims]] = {}


def claims_for(ledger: ApprovalsLedger) -> ApprovalClaims:
    """This process's claims on `ledger` (one per open ledger: the table is set up once)."""
    found = _claims.get(id(ledger))
    if found is None or found[0] is not ledger:
        found = (ledger, ApprovalClaims(ledger))
        _claims[id(ledger)] = found
    return found[1]
