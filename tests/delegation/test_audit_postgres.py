"""The audit trail on PostgreSQL: same chain, refused edits, concurrent appenders in one chain."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import pytest

from auth.audit import AuditEvent, AuditLog

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _connect():
    import psycopg

    return psycopg.connect(POSTGRES_URL, connect_timeout=2, autocommit=True)


@pytest.fixture
def pg_url():
    try:
        conn = _connect()
    except Exception:
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_URL}")
    schema = f"audit_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}", schema
    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


async def test_postgres_chain_concurrency_and_tampering(pg_url):
    url, schema = pg_url
    first, second = AuditLog(url), AuditLog(url)

    async def write(log: AuditLog, n: int) -> None:
        for i in range(n):
            await log.record(AuditEvent.FGA_CHECK, "withheld", sub=f"u{i}", act="warrant-agent")

    await asyncio.gather(write(first, 15), write(second, 15))
    result = await first.verify()
    assert result.ok and result.records == 30
    conn = _connect()
    import psycopg

    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute(f"UPDATE {schema}.warrant_audit SET outcome = 'x' WHERE seq = 3")
    conn.execute(f"ALTER TABLE {schema}.warrant_audit DISABLE TRIGGER ALL")
    conn.execute(f"UPDATE {schema}.warrant_audit SET outcome = 'allowed' WHERE seq = 3")
    conn.close()
    broken = await first.verify()
    assert not broken.ok and broken.bad_seq == 3
    await first.close()
    await second.close()
