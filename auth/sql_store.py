"""A SQLite-or-PostgreSQL store with a schema: how Warrant's durable tables (approvals ledger,
claims, standing approvals, audit trail) open their database, set their schema up once and run
SQL written with `?` placeholders on either engine.

SQLite: one connection serialised by an asyncio lock (SQLite's own file locking covers other
processes), every call off the event loop. PostgreSQL: a small pool opened on first use; schema
statements run in one transaction under an advisory lock, because server processes start
together and two of them running DDL at once deadlock on the table's exclusive locks.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str | Path) -> bool:
    """A `postgresql://` URL (else a SQLite file path)."""
    return str(location).startswith(POSTGRES_SCHEMES)


@dataclass(frozen=True)
class Schema:
    """Tables a store needs: idempotent statements per engine, columns added since first release
    (`(table, column, SQL type)`, added to older databases on open) and, for PostgreSQL, a query
    that returns a row when the schema is already there (its DDL locks the table: skip it)."""

    sqlite: str
    postgres: tuple[str, ...]
    added_columns: tuple[tuple[str, str, str], ...] = ()
    postgres_present: str | None = None

    @classmethod
    def portable(cls, statements: str | Sequence[str], **kwargs: Any) -> Schema:
        """The same statements on both engines (a `;`-separated script or a sequence)."""
        if isinstance(statements, str):
            script, parts = statements, statements.split(";")
        else:
            script, parts = ";\n".join(statements) + ";", list(statements)
        return cls(sqlite=script, postgres=tuple(s for s in parts if s.strip()), **kwargs)


class SQLStore:
    """SQL both engines share, written with `?`; each engine runs it its own way."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query; its rows."""
        raise NotImplementedError

    async def ensure(self, schema: Schema) -> None:
        """Set `schema` up in this database (once per store; more tables next to the first)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release the connection (or pool)."""
        return None


class SQLiteStore(SQLStore):
    def __init__(self, path: Path, schema: Schema, *, busy_timeout_ms: int = 5000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._ensure_sync(schema)
        self._done: set[Schema] = {schema}
        self._lock = asyncio.Lock()

    def _ensure_sync(self, schema: Schema) -> None:
        self._conn.executescript(schema.sqlite)
        for table, name, kind in schema.added_columns:
            present = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if name not in present:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    async def ensure(self, schema: Schema) -> None:
        async with self._lock:
            if schema not in self._done:
                await asyncio.to_thread(self._ensure_sync, schema)
                self._done.add(schema)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._conn.execute(sql, params).rowcount)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._conn.execute(sql, params).fetchall())

    async def close(self) -> None:
        async with self._lock:
            # closing checkpoints the write-ahead log: disk I/O, off the event loop
            await asyncio.to_thread(self._conn.close)


class PostgresStore(SQLStore):
    def __init__(self, url: str, schema: Schema, *, schema_lock: int) -> None:
        self._url = url
        self._schema = schema
        self._schema_lock = schema_lock  # the advisory lock key held while a schema is set up
        self._pool: Any = None
        self._ready = asyncio.Lock()
        self._done: set[Schema] = set()

    async def _set_up(self, pool: Any, schema: Schema) -> None:
        # Held until the DDL commits.
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._schema_lock,))
            if schema.postgres_present is not None:
                cur = await conn.execute(schema.postgres_present)
                if await cur.fetchone() is not None:
                    return
            for statement in schema.postgres:
                await conn.execute(statement)
            for table, name, kind in schema.added_columns:
                await conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}")

    async def _get_pool(self) -> Any:
        async with self._ready:
            if self._pool is None:
                from psycopg_pool import AsyncConnectionPool

                pool = AsyncConnectionPool(self._url, min_size=1, max_size=4, open=False)
                await pool.open(wait=True, timeout=10)
                await self._set_up(pool, self._schema)
                self._done.add(self._schema)
                self._pool = pool
        return self._pool

    async def ensure(self, schema: Schema) -> None:
        pool = await self._get_pool()
        async with self._ready:
            if schema not in self._done:
                await self._set_up(pool, schema)
                self._done.add(schema)

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql(sql), params)
            return cur.rowcount

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql(sql), params)
            return await cur.fetchall()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def open_store(
    location: str | Path, schema: Schema, *, schema_lock: int, busy_timeout_ms: int = 5000
) -> SQLiteStore | PostgresStore:
    """The store at `location` (a `postgresql://` URL or a SQLite file) with `schema` set up
    (on PostgreSQL at first use)."""
    text = str(location)
    if is_postgres(text):
        return PostgresStore(text, schema, schema_lock=schema_lock)
    return SQLiteStore(Path(text), schema, busy_timeout_ms=busy_timeout_ms)
