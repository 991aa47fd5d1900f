"""The Chroma collection that holds document chunks, behind the few operations Warrant needs.

Embedded default: a `PersistentClient` in the data folder; production: a Chroma server through
`HttpClient` (`WARRANT_CHROMA_MODE=http`). Telemetry is off either way. Every chunk carries
`doc_id`, `chunk_index`, `title`, `source` and `content_hash` metadata; `doc_id` is what FGA
decisions are keyed by.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import chromadb
from chromadb.config import Settings as ChromaSettings

from settings import Settings, get_settings
from vectorstore.embeddings import (
    EMBEDDING_FUNCTION_NAME,
    EmbeddingConfigError,
    WarrantEmbeddingFunction,
)
from vectorstore.memory_hygiene import scrub_heap_memory

# Before this process opens Chroma: its native writer persists uninitialised memory, which must
# never be a freed token buffer (see vectorstore.memory_hygiene).
scrub_heap_memory()

T = TypeVar("T")
P = ParamSpec("P")

# Every call into Chroma runs on this one thread. glibc's per-thread cache (tcache) hands small
# freed blocks back to the thread that freed them, unscrubbed; a thread that only ever runs
# Chroma has none but Chroma's own to give it, never a token another part of the process freed.
_chroma_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warrant-chroma")
_on_chroma_thread = threading.local()


def on_chroma_thread(work: Callable[[], T]) -> T:
    """Run `work` on the Chroma thread and wait for it (directly when already there)."""
    if getattr(_on_chroma_thread, "active", False):
        return work()

    def run() -> T:
        _on_chroma_thread.active = True
        return work()

    return _chroma_thread.submit(run).result()


def chroma_call(method: Callable[P, T]) -> Callable[P, T]:
    """Decorate a function that calls into Chroma: it runs on the Chroma thread."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return on_chroma_thread(lambda: method(*args, **kwargs))

    return wrapper


log = logging.getLogger(__name__)

DOC_ID = "doc_id"
CHUNK_INDEX = "chunk_index"
TITLE = "title"
SOURCE = "source"
CONTENT_HASH = "content_hash"

# Cosine on normalised embeddings. A deeper search than Chroma's defaults (ef 100) because the
# retriever reads far into the ranking when over-fetching: on 50k synthetic chunks, ANN recall of
# the top 80 goes from 0.90 (defaults) to 0.99 (ef 200) and 1.0 (ef_search 400), for about half a
# millisecond per query (benchmarks/retrieval.py measures the end result).
DEFAULT_HNSW = {"space": "cosine", "ef_construction": 200, "ef_search": 400}

# Chroma's `get` pages; large documents are read back in pages of this size.
_PAGE = 5000


class StoreError(RuntimeError):
    """The vector store is unreachable, or its collection does not fit this configuration."""


@dataclass(frozen=True)
class Hit:
    """One chunk found by a vector query, in rank order; `chunk_id` may be missing."""

    chunk_id: str | None
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    distance: float | None = None

    @property
    def doc_id(self) -> str | None:
        """The document this chunk belongs to, or None when its metadata lacks one."""
        value = self.metadata.get(DOC_ID)
        return value if isinstance(value, str) and value else None


def chroma_client(settings: Settings | None = None) -> chromadb.ClientAPI:
    """A Chroma client for the configured mode (persistent folder or server), telemetry off."""
    return on_chroma_thread(lambda: _chroma_client(settings or get_settings()))


def _chroma_client(settings: Settings) -> chromadb.ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_mode == "http":
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        return chromadb.PersistentClient(
            path=str(settings.path("chroma")), settings=chroma_settings
        )
    except Exception as exc:  # chromadb raises bare exceptions for connection failures
        where = (
            f"{settings.chroma_host}:{settings.chroma_port}"
            if settings.chroma_mode == "http"
            else str(settings.data_dir / "chroma")
        )
        raise StoreError(f"cannot open the Chroma store at {where}: {exc}") from exc


# Files another process's writes change: Chroma's SQLite database (its write-ahead log included).
_STAMPED = ("chroma.sqlite3", "chroma.sqlite3-wal")

Stamp = tuple[tuple[str, int, int], ...]


def disk_stamp(folder: Path | None) -> Stamp | None:
    """What a persistent store's files look like now (name, mtime, size); None for a server.

    An embedded Chroma caches its vector index in memory and never sees rows that another process
    (`warrant ingest` beside `langgraph dev`) wrote; a changed stamp says the cache is stale.
    """
    if folder is None:
        return None
    stamp = []
    for name in _STAMPED:
        try:
            st = (folder / name).stat()
        except FileNotFoundError:
            continue
        stamp.append((name, st.st_mtime_ns, st.st_size))
    return tuple(stamp)


class DocumentStore:
    """One Chroma collection of chunks and the embedding function that built it."""

    def __init__(
        self,
        collection: Any,
        embedding: WarrantEmbeddingFunction,
        *,
        client: Any = None,
        folder: Path | None = None,
    ) -> None:
        self.collection = collection
        self.embedding = embedding
        self.client = client
        self.folder = folder  # the persistent folder (None: a Chroma server, or not ours)
        self.stamp = disk_stamp(folder)

    def changed_elsewhere(self) -> bool:
        """Whether another process wrote to the persistent folder since this store last did."""
        return self.folder is not None and disk_stamp(self.folder) != self.stamp

    @chroma_call
    def close(self) -> None:
        """Release the Chroma client this store opened (its in-memory index with it)."""
        if self.client is not None and self.folder is not None:
            try:
                self.client.close()
            except Exception:
                log.debug("closing the Chroma client failed", exc_info=True)

    @classmethod
    @chroma_call
    def open(
        cls,
        settings: Settings | None = None,
        *,
        client: chromadb.ClientAPI | None = None,
        name: str | None = None,
        create: bool = True,
        hnsw: Mapping[str, Any] | None = None,
    ) -> DocumentStore:
        """Open (or create) the collection; a collection built by other embeddings is an error."""
        settings = settings or get_settings()
        # a client of our own on the persistent folder: this store may close and reopen it
        folder = None
        if client is None:
            client = chroma_client(settings)
            if settings.chroma_mode != "http":
                folder = settings.data_dir.resolve() / "chroma"
        name = name or settings.chroma_collection
        embedding = WarrantEmbeddingFunction(settings.embeddings)
        try:
            existing = {c.name if hasattr(c, "name") else str(c) for c in client.list_collections()}
        except Exception as exc:
            raise StoreError(f"cannot list Chroma collections: {exc}") from exc
        try:
            if name in existing:
                collection = client.get_collection(name)
            elif create:
                configuration: dict[str, Any] = {
                    "hnsw": {**DEFAULT_HNSW, **dict(hnsw or {})},
                    "embedding_function": embedding,
                }
                collection = client.create_collection(name, configuration=configuration)  # type: ignore[arg-type]
            else:
                raise StoreError(f"no document collection {name!r}: ingest documents first")
            # Chroma rebuilds the stored embedding function by its registered name; a process
            # that cannot (unknown name, bad config) must not silently embed with something else.
            stored = collection.configuration.get("embedding_function")
        except ValueError as exc:
            raise StoreError(f"cannot reopen collection {name!r}: {exc}") from exc
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open collection {name!r}: {exc}") from exc
        if stored is None or getattr(stored, "name", lambda: None)() != EMBEDDING_FUNCTION_NAME:
            raise StoreError(
                f"collection {name!r} was not built by Warrant's embeddings; "
                "use another WARRANT_CHROMA_COLLECTION"
            )
        if stored.spec != embedding.spec:
            raise StoreError(
                f"collection {name!r} was built with embeddings {stored.spec!r} but "
                f"WARRANT_EMBEDDINGS is {embedding.spec!r}: set it back, or ingest into "
                "another collection"
            )
        return cls(collection, stored, client=client, folder=folder)

    # -- reads ---------------------------------------------------------------------------

    @chroma_call
    def count(self) -> int:
        """How many chunks the collection holds."""
        return int(self.collection.count())

    def embed_query(self, text: str) -> list[float]:
        """The query vector for `text`."""
        try:
            return [float(x) for x in self.embedding.embed([text])[0]]
        except EmbeddingConfigError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot embed the question: {exc}") from exc

    @chroma_call
    def query(
        self, embedding: Sequence[float], n: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """The `n` nearest chunks to `embedding` that match `where`, nearest first."""
        if n <= 0:
            return []
        try:
            result = self.collection.query(
                query_embeddings=[list(embedding)],
                n_results=n,
                where=dict(where) if where else None,
                include=["documents", "metadatas", "distances"],
            )
        except Exception as exc:
            raise StoreError(f"the vector query failed: {exc}") from exc
        ids = (result.get("ids") or [[]])[0]
        docs = (result.get("documents") or [[]])[0] or []
        metas = (result.get("metadatas") or [[]])[0] or []
        dists = (result.get("distances") or [[]])[0] or []
        hits = []
        for i, chunk_id in enumerate(ids):
            hits.append(
                Hit(
                    chunk_id=chunk_id,
                    text=docs[i] if i < len(docs) and docs[i] is not None else "",
                    metadata=dict(metas[i] or {}) if i < len(metas) else {},
                    distance=float(dists[i]) if i < len(dists) else None,
                )
            )
        return hits

    @chroma_call
    def chunks_of(self, doc_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Every stored chunk id of `doc_id` with its metadata."""
        found: list[tuple[str, dict[str, Any]]] = []
        offset = 0
        while True:
            page = self.collection.get(
                where={DOC_ID: doc_id}, include=["metadatas"], limit=_PAGE, offset=offset
            )
            ids = page.get("ids") or []
            metas = page.get("metadatas") or [{}] * len(ids)
            found.extend((i, dict(m or {})) for i, m in zip(ids, metas, strict=False))
            if len(ids) < _PAGE:
                return found
            offset += _PAGE

    @chroma_call
    def documents(self) -> dict[str, dict[str, Any]]:
        """Every stored document: id -> title, source, content hash and chunk count."""
        docs: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = self.collection.get(include=["metadatas"], limit=_PAGE, offset=offset)
            ids = page.get("ids") or []
            for meta in page.get("metadatas") or []:
                meta = meta or {}
                doc_id = meta.get(DOC_ID)
                if not isinstance(doc_id, str):
                    continue
                entry = docs.setdefault(
                    doc_id,
                    {
                        TITLE: meta.get(TITLE),
                        SOURCE: meta.get(SOURCE),
                        CONTENT_HASH: meta.get(CONTENT_HASH),
                        "chunks": 0,
                    },
                )
                entry["chunks"] += 1
            if len(ids) < _PAGE:
                return docs
            offset += _PAGE

    # -- writes --------------------------------------------------------------------------

    @chroma_call
    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        """Store chunks (one call, so a failure leaves none of them behind)."""
        if not ids:
            return
        try:
            self.collection.upsert(
                ids=list(ids),
                documents=list(texts),
                embeddings=[list(map(float, e)) for e in embeddings],
                metadatas=[dict(m) for m in metadatas],
            )
        except Exception as exc:
            raise StoreError(f"cannot store chunks: {exc}") from exc
        self.stamp = disk_stamp(self.folder)  # our own write: the cache already holds it

    @chroma_call
    def delete_ids(self, ids: Sequence[str]) -> None:
        """Remove these chunks."""
        if not ids:
            return
        try:
            for start in range(0, len(ids), _PAGE):
                self.collection.delete(ids=list(ids[start : start + _PAGE]))
        except Exception as exc:
            raise StoreError(f"cannot delete chunks: {exc}") from exc
        self.stamp = disk_stamp(self.folder)
