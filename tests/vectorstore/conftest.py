"""Fixtures for the documents tests: one embedding model per session, a fresh collection each."""

from __future__ import annotations

import uuid

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from settings import get_settings
from tests.vectorstore.memory_fga import MemoryFGA
from vectorstore.embeddings import local_model
from vectorstore.store import DocumentStore


@pytest.fixture(scope="session")
def embedding_model():
    """Loads MiniLM once for the whole session (the module caches it per process)."""
    return local_model()


@pytest.fixture(scope="session")
def chroma(tmp_path_factory):
    return chromadb.PersistentClient(
        path=str(tmp_path_factory.mktemp("chroma")),
        settings=ChromaSettings(anonymized_telemetry=False),
    )


@pytest.fixture
def store(chroma, embedding_model) -> DocumentStore:
    return DocumentStore.open(get_settings(), client=chroma, name=f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def fga() -> MemoryFGA:
    return MemoryFGA()


def put(store: DocumentStore, doc_id: str, texts: list[str], title: str | None = None) -> None:
    """Store chunks of one document directly (retriever tests do not need ingestion)."""
    vectors = store.embedding.embed(texts)
    store.add(
        [f"{doc_id}:h:{i}" for i in range(len(texts))],
        texts,
        vectors,
        [
            {"doc_id": doc_id, "chunk_index": i, "title": title or doc_id, "source": doc_id}
            for i in range(len(texts))
        ],
    )


@pytest.fixture(scope="session")
def document_model_dict():
    from vectorstore.access_model import document_model

    return document_model()


class Truncating:
    """Wraps an FGAClient so list_objects returns at most `limit` objects (as OpenFGA may)."""

    def __init__(self, inner, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    async def list_objects(self, *args, **kwargs):
        return (await self.inner.list_objects(*args, **kwargs))[: self.limit]

    def __getattr__(self, name):
        return getattr(self.inner, name)
