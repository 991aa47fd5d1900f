"""The shared SQLite-or-PostgreSQL store: schemas set up once, older tables upgraded, and
processes setting a schema up together on PostgreSQL neither fail nor deadlock."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest

from auth.sql_store import PostgresStore, Schema, SQLiteStore, is_postgres, open_store
from tests.approvals.postgres import POSTGRES_URL, postgres_reachable


def _schema(table: str) -> Schema:
    return Schema.portable(
        (
            f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {table}_n ON {table} (n)",
        ),
        added_columns=((table, "note", "TEXT"),),
    )


def test_a_location_picks_its_engine(tmp_path: Path) -> None:
    assert is_postgres("postgresql://u@h/db") and is_postgres("postgres://u@h/db")
    assert not is_postgres(tmp_path / "x.sqlite3")
    assert isinstance(open_store(POSTGRES_URL, _schema("t"), schema_lock=1), PostgresStore)
    store = open_store(tmp_path / "sub" / "x.sqlite3", _schema("t"), schema_lock=1)
    assert isinstance(store, SQLiteStore)
    assert (tmp_path / "sub" / "x.sqlite3").exists()


async def test_sqlite_runs_question_mark_sql_and_ensures_more_tables(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", _schema("first"))
    try:
        assert (
            await store.execute("INSERT INTO first (id, n, note) VALUES (?, ?, ?)", ("a", 1, "x"))
            == 1
        )
        second = _schema("second")
        await store.ensure(second)
        await store.ensure(second)  # a second ensure is a no-op, not an error
        await store.execute("INSERT INTO second (id, n) VALUES (?, ?)", ("b", 2))
        assert await store.fetch("SELECT id, n, note FROM first") == [("a", 1, "x")]
        assert await store.fetch("SELECT id, n FROM second") == [("b", 2)]
    finally:
        await store.close()


async def test_sqlite_adds_the_columns_an_older_table_lacks(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    old.execute("INSERT INTO things VALUES ('a', 1)")
    old.commit()
    old.close()
    store = SQLiteStore(path, _schema("things"))
    try:
        assert await store.fetch("SELECT id, n, note FROM things") == [("a", 1, None)]
    finally:
        await store.close()


async def test_postgres_stores_setting_one_schema_up_at_once_all_succeed() -> None:
    if not postgres_reachable():
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_URL}")
    table = f"warrant_test_store_{uuid.uuid4().hex[:12]}"
    schema = _schema(table)
    # Separate stores stand for separate processes: each has its own pool and connections.
    stores = [PostgresStore(POSTGRES_URL, schema, schema_lock=7315999) for _ in range(4)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.ensure(schema) for s in stores)), 60)
        more = _schema(table + "_more")
        await asyncio.wait_for(asyncio.gather(*(s.ensure(more) for s in stores)), 60)
        assert await stores[0].execute(f"INSERT INTO {table} (id, n) VALUES (?, ?)", ("a", 1)) == 1
        assert await stores[1].fetch(f"SELECT id, n, note FROM {table}") == [("a", 1, None)]
        assert await stores[2].fetch(f"SELECT count(*) FROM {table}_more") == [(0,)]
    finally:
        await stores[0].execute(f"DROP TABLE IF EXISTS {table}, {table}_more")
        for store in stores:
            await store.close()
