"""Create every table the production server needs, once, before a server process starts.

Aegra 0.6.x creates its schema in each process's startup (Alembic, then LangGraph's checkpoint
and store tables); two processes starting at once on an empty database collide
(`store_migrations_pkey` duplicate key) and one of them dies. So `warrant serve` prepares the
database first under a PostgreSQL advisory lock: the first process creates the tables, the
others wait and find them there; Aegra's own startup then has nothing left to create.
"""

from __future__ import annotations

import asyncio
import os
import time

from psycopg.rows import dict_row

SCHEMA_LOCK = 0x5741_5252_414E_54  # "WARRANT": one advisory lock for every replica's setup
LOCK_WAIT_SECONDS = 300.0


async def _langgraph_tables(url: str) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg import AsyncConnection

    async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        await AsyncPostgresSaver(conn).setup()
        await AsyncPostgresStore(conn).setup()


async def _warrant_tables(ledger_url: str, database_url: str) -> None:
    from auth.approvals_claims import ApprovalClaims
    from auth.approvals_ledger import ApprovalsLedger
    from deploy.orphan_runs import OrphanRuns

    ledger = ApprovalsLedger(ledger_url)
    try:
        await ledger.get("")  # opening the ledger creates its tables
        await ApprovalClaims(ledger).holder("")
    finally:
        await ledger.close()
    await OrphanRuns(database_url, "setup").setup()


def prepare_database(database_url: str, ledger_url: str) -> None:
    """Run Aegra's migrations and create LangGraph's and Warrant's tables, one process at a
    time (blocking: `warrant serve` calls it before it becomes the server)."""
    import psycopg

    os.environ["DATABASE_URL"] = database_url  # Aegra reads its settings when imported
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Try, don't wait: a session blocked in `pg_advisory_lock` holds a snapshot, and the
        # checkpointer's `CREATE INDEX CONCURRENTLY` waits for every snapshot: a deadlock.
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (SCHEMA_LOCK,)).fetchone()[0]:
            if time.monotonic() > deadline:
                raise TimeoutError("another server process is preparing the database")
            time.sleep(0.2)
        try:
            from aegra_api.core.migrations import run_migrations

            run_migrations()
            asyncio.run(_langgraph_tables(database_url))
            asyncio.run(_warrant_tables(ledger_url, database_url))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
