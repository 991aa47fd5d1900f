"""Shared fixtures: the real document model on the embedded engine, and a tiny chunk index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from auth.fga.client import TupleKey
from auth.fga.local import LocalFGA
from settings import get_settings
from vectorstore.store import Hit

ALICE = "user:alice@example.com"
BOB = "user:bob@example.com"
AGENT = "warrant-agent"


class Clock:
    """A clock the test moves (expiry without sleeping)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fga():
    from vectorstore.access_model import document_model

    client = LocalFGA.in_memory(document_model())
    await client.write(
        [
            TupleKey(ALICE, "owner", "doc:alice-plan"),
            TupleKey(ALICE, "owner", "doc:alice-notes"),
            TupleKey(ALICE, "owner", "doc:shared"),
            TupleKey(BOB, "viewer", "doc:shared"),
            TupleKey(BOB, "owner", "doc:bob-secret"),
            TupleKey("folder:hr", "parent", "doc:alice-notes"),
            TupleKey(ALICE, "owner", "folder:hr"),
        ]
    )
    yield client
    await client.close()


@pytest.fixture(autouse=True)
def audit_here(tmp_path):
    with get_settings.override(data_dir=tmp_path, audit_db=None) as settings:
        yield settings


class Chunks:
    """A `ChunkIndex` over fixed chunks, one per document, in a fixed rank order."""

    def __init__(self, doc_ids: Sequence[str]) -> None:
        self.hits = [
            Hit(f"{d}:0", f"text of {d}", {"doc_id": d, "chunk_index": 0}, float(i))
            for i, d in enumerate(doc_ids)
        ]

    def embed_query(self, text: str) -> list[float]:
        return [0.0]

    def query(
        self, embedding: Sequence[float], n: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        hits = self.hits
        if where:
            allowed = set(where["doc_id"]["$in"])
            hits = [h for h in hits if h.doc_id in allowed]
        return hits[:n]
