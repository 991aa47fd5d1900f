"""The node paths the server runs, under blockbuster in this event loop: no blocking call.

`langgraph dev` runs the graph with blockbuster on (the tests in this folder start it without
`--allow-blocking`); these in-process checks pin the same rule on each path that touches
Chroma, the embedding model, FGA's SQLite tuples or the approvals ledger, so a new blocking call
fails here, fast, with its call site in the traceback.
"""

from __future__ import annotations

import threading

import pytest
from blockbuster import blockbuster_ctx

import tools.documents as documents
from auth.approvals_ledger import ApprovalsLedger
from auth.fga.local import LocalFGA
from settings import get_settings
from tests.server.test_server_documents import ingest_demo_corpus
from tools.documents import search_documents
from vectorstore.demo import DEMO_QUESTION, PRIVATE_FACT, SHARED_FACT, SHARED_QUESTION


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("nonblocking-data")
    ingest_demo_corpus(data_dir)  # by `warrant ingest`, in processes of their own
    return data_dir


@pytest.fixture
def fresh_store_cache(monkeypatch):
    """No store opened by an earlier test: the search opens Chroma itself, under blockbuster."""
    monkeypatch.setattr(documents, "_stores", {})


@pytest.mark.slow
async def test_document_search_opens_and_searches_without_blocking(
    corpus_dir, fresh_store_cache
) -> None:
    with get_settings.override(data_dir=corpus_dir, fga_backend="local") as settings:
        with blockbuster_ctx():
            mine = await search_documents(DEMO_QUESTION, "alice@example.com", settings=settings)
            theirs = await search_documents(DEMO_QUESTION, "bob@example.com", settings=settings)
            shared = await search_documents(SHARED_QUESTION, "bob@example.com", settings=settings)
    assert mine.error is None and PRIVATE_FACT in mine.render()
    assert theirs.error is None and PRIVATE_FACT not in theirs.render()
    assert shared.error is None and SHARED_FACT in shared.render()


async def test_local_fga_reads_writes_and_closes_without_blocking(tmp_path) -> None:
    fga = LocalFGA.open(tmp_path / "fga.sqlite3")
    from vectorstore.access_model import ensure_document_model

    await ensure_document_model(fga)
    closed_on: list[threading.Thread] = []
    store_close = fga.store.close

    def recording_close() -> None:
        closed_on.append(threading.current_thread())
        store_close()

    fga.store.close = recording_close  # type: ignore[method-assign]
    with blockbuster_ctx():
        from auth.fga.client import TupleKey

        await fga.write([TupleKey("user:alice@example.com", "owner", "doc:plan")])
        assert await fga.list_objects("user:alice@example.com", "can_view", "doc") == ["doc:plan"]
        await fga.close()
    assert closed_on and closed_on[0] is not threading.main_thread()


async def test_the_ledger_records_and_closes_without_blocking(tmp_path) -> None:
    ledger = await _open_off_loop(tmp_path / "approvals.sqlite3")
    with blockbuster_ctx():
        record, mine = await ledger.reserve(
            user_id="auth0|alice",
            thread_id="t1",
            tool_call_id="call-1",
            tool_name="create_public_gist",
            action_digest="d" * 64,
            binding_message="Create public gist x.md",
        )
        assert mine and (await ledger.get(record.id)) is not None
        backend = ledger._db
        conn = backend._conn
        closed_on: list[threading.Thread] = []

        class Recording:
            def __getattr__(self, name):
                return getattr(conn, name)

            def close(self) -> None:
                closed_on.append(threading.current_thread())
                conn.close()

        backend._conn = Recording()
        await ledger.close()
    # sqlite3's close is not one blockbuster watches; it checkpoints the WAL all the same
    assert closed_on and closed_on[0] is not threading.main_thread()


async def _open_off_loop(path) -> ApprovalsLedger:
    import asyncio

    return await asyncio.to_thread(ApprovalsLedger, path)
