"""Recover the runs of a server process that died (SIGKILL, OOM, a lost machine).

Aegra 0.6.x runs each run as an asyncio task in the process that received the request and
records nothing that says which process that is. A killed process leaves its runs `running`
and their threads `busy` for ever, and Aegra refuses to resume a busy thread: the approvals
they wait for would be lost. Each replica therefore heartbeats its live runs into two small
tables; any replica finds runs that are active in Aegra's tables but no live replica has
heartbeated for `orphan_run_seconds` (the run's own heartbeat, not its replica's: a replica
restarted under the same name does not vouch for the runs of its previous life), marks them
failed, and puts their threads back to what their
last checkpoint says (`interrupted` if it waits for an approval, else `idle`), so that the
poller can wake them. The approval node then asks the ledger and the provider as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from settings import get_settings

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS warrant_replicas ("
    " replica TEXT PRIMARY KEY, seen_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS warrant_replica_runs ("
    " run_id TEXT PRIMARY KEY, replica TEXT NOT NULL, seen_at DOUBLE PRECISION NOT NULL)",
)
_ORPHANS = """
SELECT r.run_id, r.thread_id FROM runs r
WHERE r.status IN ('pending', 'running')
  AND r.updated_at < now() - make_interval(secs => %s)
  AND NOT EXISTS (
    SELECT 1 FROM warrant_replica_runs w WHERE w.run_id = r.run_id AND w.seen_at > %s)
"""


def _active_run_ids() -> list[str]:
    from aegra_api.api import runs

    return [run_id for run_id, task in list(runs.active_runs.items()) if not task.done()]


async def _thread_status(thread_id: str) -> str:
    """`interrupted` when the thread's last checkpoint waits on an interrupt, else `idle`."""
    from aegra_api.services.langgraph_service import get_langgraph_service

    from graph.resumer import GRAPH_ID

    async with get_langgraph_service().get_graph(GRAPH_ID) as graph:
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    return "interrupted" if snapshot.interrupts else "idle"


class OrphanRuns:
    """Heartbeats this replica's runs and recovers the runs of dead replicas."""

    def __init__(self, database_url: str, replica: str) -> None:
        self.url = database_url
        self.replica = replica
        self.recovered = 0

    async def _connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def setup(self) -> None:
        async with await self._connect() as conn:
            for statement in _SCHEMA:
                await conn.execute(statement)

    async def heartbeat(self) -> None:
        """Say this replica is alive, with the runs it is executing right now."""
        now = time.time()
        async with await self._connect() as conn:
            await conn.execute(
                "INSERT INTO warrant_replicas (replica, seen_at) VALUES (%s, %s)"
                " ON CONFLICT (replica) DO UPDATE SET seen_at = excluded.seen_at",
                (self.replica, now),
            )
            for run_id in _active_run_ids():
                await conn.execute(
                    "INSERT INTO warrant_replica_runs (run_id, replica, seen_at)"
                    " VALUES (%s, %s, %s) ON CONFLICT (run_id) DO UPDATE"
                    " SET replica = excluded.replica, seen_at = excluded.seen_at",
                    (run_id, self.replica, now),
                )
            await conn.execute(
                "DELETE FROM warrant_replica_runs WHERE seen_at < %s", (now - 3600.0,)
            )

    async def recover(self, dead_after: float) -> int:
        """Fail the runs no live replica executes and release their threads; how many."""
        import psycopg

        cutoff = time.time() - dead_after
        mine = set(_active_run_ids())
        recovered = 0
        async with await self._connect() as conn:
            rows = await (await conn.execute(_ORPHANS, (dead_after, cutoff))).fetchall()
            for run_id, thread_id in rows:
                if run_id in mine:
                    continue
                cur = await conn.execute(
                    "UPDATE runs SET status = 'error', updated_at = now(),"
                    " error_message = 'the server process running it stopped'"
                    " WHERE run_id = %s AND status IN ('pending', 'running')",
                    (run_id,),
                )
                if cur.rowcount != 1:
                    continue  # another replica recovered it first
                status = await _thread_status(thread_id)
                await conn.execute(
                    "UPDATE thread SET status = %s, updated_at = now()"
                    " WHERE thread_id = %s AND status = 'busy'",
                    (status, thread_id),
                )
                log.warning("recovered run %s of a stopped replica (thread %s)", run_id, status)
                recovered += 1
            # Wake claims of replicas that stopped: free now, not when their leases end.
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                await conn.execute(
                    "DELETE FROM warrant_approval_claims WHERE owner IN"
                    " (SELECT replica FROM warrant_replicas WHERE seen_at < %s)",
                    (cutoff,),
                )
        self.recovered += recovered
        return recovered

    async def run(self, stop: asyncio.Event) -> None:
        s = get_settings()
        await self.setup()
        while not stop.is_set():
            try:
                await self.heartbeat()
                await self.recover(s.orphan_run_seconds)
            except Exception as exc:  # a database hiccup must not end the loop
                log.warning("replica heartbeat: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.replica_heartbeat_seconds)


@contextlib.asynccontextmanager
async def orphan_runs_lifespan(database_url: str, replica: str) -> AsyncIterator[OrphanRuns]:
    """Heartbeat and recover for as long as the server runs."""
    orphans = OrphanRuns(database_url, replica)
    stop = asyncio.Event()
    task = asyncio.create_task(orphans.run(stop), name="warrant-orphan-runs")
    try:
        yield orphans
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
