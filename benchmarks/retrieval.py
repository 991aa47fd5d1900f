"""Benchmark: FGA-filtered retrieval recall and cost at every visibility level.

Corpus: synthetic, built offline. Each document has 5 chunks near one of 256 topic centres in a
24-dimensional latent space projected to 384 dimensions (MiniLM's size), unit-normalised. The
vectors are generated, not MiniLM embeddings: embedding 50k chunks with MiniLM on two shared
cores takes minutes, and recall here is about the filtering strategy, not about the embedding.
Queries are perturbed corpus vectors.

For users who can see 0.1%, 1%, 10%, 50% and 100% of the documents (chosen at random), k = 5:
- `fga_retriever`: `vectorstore.retriever.FGARetriever` (list_objects / over-fetch / final check);
- `top_k_then_check`: the common approach, top 2k candidates then one batch_check;
- `unfiltered`: a plain Chroma query, the latency floor (it ignores access, recall vs all).
Recall@k is measured against the exact top k among the user's visible chunks (brute force).
FGA answers from an in-memory tuple set behind the `FGAClient` interface (its list_objects is
truncated at 1000 like OpenFGA's default), so latencies are the retrieval's own; FGA calls are
counted. Results: `benchmarks/results/retrieval.json`.

Run: `python benchmarks/retrieval.py [--sizes 10000 50000] [--queries 40]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import prepare_environment

prepare_environment()

import chromadb
from chromadb.config import Settings as ChromaSettings

from auth.fga.client import CheckRequest, CheckResult, TupleKey
from vectorstore.retriever import FGARetriever
from vectorstore.store import DOC_ID, DocumentStore, Hit

DIM = 384
CHUNKS_PER_DOC = 5
TOPICS = 256
LATENT = 24  # intrinsic dimension of the synthetic embeddings
K = 5
VISIBILITY = (0.001, 0.01, 0.1, 0.5, 1.0)
LIST_LIMIT = 1000  # OpenFGA's default OPENFGA_LIST_OBJECTS_MAX_RESULTS


class SetFGA:
    """An FGAClient over a set of (user, doc) grants; counts calls per method."""

    def __init__(self, grants: dict[str, set[str]], list_limit: int | None = LIST_LIMIT) -> None:
        self.grants = grants
        self.list_limit = list_limit
        self.calls = 0

    async def check(self, user, relation, object, *, contextual_tuples=(), context=None) -> bool:
        self.calls += 1
        return object in self.grants.get(user, set())

    async def batch_check(self, checks: Sequence[CheckRequest]) -> list[CheckResult]:
        self.calls += 1
        return [CheckResult(c.object in self.grants.get(c.user, set())) for c in checks]

    async def list_objects(self, user, relation, type, *, contextual_tuples=(), context=None):
        self.calls += 1
        found = sorted(self.grants.get(user, set()))
        return found[: self.list_limit] if self.list_limit is not None else found

    async def list_users(self, *a: Any, **k: Any) -> list[str]:
        raise NotImplementedError

    async def read(self, user=None, relation=None, object=None) -> list[TupleKey]:
        return []

    async def write(self, writes=(), deletes=()) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class VectorIndex:
    """The store, queried with precomputed vectors: `embed_query("q12")` is query 12's vector."""

    def __init__(self, store: DocumentStore, queries: np.ndarray) -> None:
        self.store = store
        self.queries = queries

    def embed_query(self, text: str) -> list[float]:
        return self.queries[int(text[1:])].tolist()

    def query(self, embedding, n, where=None) -> list[Hit]:
        return self.store.query(embedding, n, where)


def build_corpus(n_chunks: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Topic mixture in a LATENT-dimensional space, projected to 384-d, plus a little noise.

    Sentence embeddings occupy a low-dimensional part of their space; isotropic 384-d noise
    would instead make every approximate index look bad, whatever the filtering does.
    """
    projection = rng.standard_normal((LATENT, DIM)).astype(np.float32) / np.sqrt(LATENT)
    centres = rng.standard_normal((TOPICS, LATENT)).astype(np.float32)
    n_docs = n_chunks // CHUNKS_PER_DOC
    doc_topic = rng.integers(0, TOPICS, n_docs)
    doc_centre = centres[doc_topic] + 0.6 * rng.standard_normal((n_docs, LATENT)).astype(np.float32)
    chunk_doc = np.repeat(np.arange(n_docs), CHUNKS_PER_DOC)
    latent = doc_centre[chunk_doc] + 0.5 * rng.standard_normal((n_chunks, LATENT)).astype(
        np.float32
    )
    vecs = latent @ projection + 0.05 * rng.standard_normal((n_chunks, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs, chunk_doc


def load_store(path: str, name: str, vecs: np.ndarray, chunk_doc: np.ndarray) -> DocumentStore:
    client = chromadb.PersistentClient(
        path=path, settings=ChromaSettings(anonymized_telemetry=False)
    )
    store = DocumentStore.open(client=client, name=name)
    batch = 5000
    for start in range(0, len(vecs), batch):
        end = min(start + batch, len(vecs))
        store.add(
            [f"c{i}" for i in range(start, end)],
            [f"chunk {i}" for i in range(start, end)],
            vecs[start:end],
            [
                {DOC_ID: f"d{chunk_doc[i]}", "chunk_index": i % CHUNKS_PER_DOC}
                for i in range(start, end)
            ],
        )
    return store


def exact_top_k(vecs: np.ndarray, q: np.ndarray, mask: np.ndarray | None, k: int) -> list[str]:
    scores = vecs @ q
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    idx = np.argsort(-scores)[:k]
    return [f"c{i}" for i in idx if np.isfinite(scores[i])]


def recall(got: Sequence[str], truth: Sequence[str]) -> float:
    if not truth:
        return 1.0 if not got else 0.0
    return len(set(got) & set(truth)) / len(truth)


def summarize(recalls: list[float], latencies: list[float], calls: list[int]) -> dict[str, float]:
    lat = sorted(latencies)
    return {
        "recall_at_k": round(statistics.fmean(recalls), 4),
        "recall_min": round(min(recalls), 4),
        "p50_ms": round(1000 * lat[len(lat) // 2], 2),
        "p95_ms": round(1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
        "fga_calls_mean": round(statistics.fmean(calls), 2),
    }


async def run_size(n_chunks: int, n_queries: int, seed: int, workdir: str) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    vecs, chunk_doc = build_corpus(n_chunks, rng)
    store = load_store(workdir, f"bench-{n_chunks}", vecs, chunk_doc)
    build_s = time.perf_counter() - t0
    n_docs = int(chunk_doc.max()) + 1
    picks = rng.integers(0, n_chunks, n_queries)
    queries = vecs[picks] + 0.35 * rng.standard_normal((n_queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = VectorIndex(store, queries)
    levels = []
    for share in VISIBILITY:
        n_visible = max(1, round(share * n_docs))
        visible_docs = rng.choice(n_docs, n_visible, replace=False)
        user = f"user:v{share}"
        fga = SetFGA({user: {f"doc:d{d}" for d in visible_docs}})
        mask = np.isin(chunk_doc, visible_docs)
        rows: dict[str, tuple[list[float], list[float], list[int]]] = {
            m: ([], [], []) for m in ("fga_retriever", "top_k_then_check", "unfiltered")
        }
        strategies: dict[str, int] = {}
        retriever = FGARetriever(user=user, fga=fga, store=index, k=K, fga_timeout=30)
        for qi in range(n_queries):
            q = queries[qi]
            truth = exact_top_k(vecs, q, mask, K)
            # FGARetriever
            fga.calls = 0
            start = time.perf_counter()
            out = await retriever.search(f"q{qi}")
            elapsed = time.perf_counter() - start
            got = [d.id for d in out.documents]
            assert all(d.metadata[DOC_ID] in {f"d{x}" for x in visible_docs} for d in out.documents)
            strategies[out.strategy] = strategies.get(out.strategy, 0) + 1
            r = rows["fga_retriever"]
            r[0].append(recall(got, truth))
            r[1].append(elapsed)
            r[2].append(fga.calls)
            # the common approach: top 2k candidates, one batch_check, keep what passes
            fga.calls = 0
            start = time.perf_counter()
            hits = store.query(q.tolist(), 2 * K)
            answers = await fga.batch_check(
                [CheckRequest(user, "can_view", f"doc:{h.doc_id}") for h in hits]
            )
            kept = [h.chunk_id for h, a in zip(hits, answers, strict=True) if a.allowed][:K]
            elapsed = time.perf_counter() - start
            r = rows["top_k_then_check"]
            r[0].append(recall(kept, truth))
            r[1].append(elapsed)
            r[2].append(fga.calls)
            # the floor: unfiltered query (recall against the global exact top k)
            start = time.perf_counter()
            plain = [h.chunk_id for h in store.query(q.tolist(), K)]
            elapsed = time.perf_counter() - start
            r = rows["unfiltered"]
            r[0].append(recall(plain, exact_top_k(vecs, q, None, K)))
            r[1].append(elapsed)
            r[2].append(0)
        level = {
            "visibility": share,
            "visible_docs": n_visible,
            "visible_chunks": int(mask.sum()),
            "strategies": strategies,
        }
        for method, (rec, lat, calls) in rows.items():
            level[method] = summarize(rec, lat, calls)
        levels.append(level)
        fr, naive, floor = level["fga_retriever"], level["top_k_then_check"], level["unfiltered"]
        print(
            f"{n_chunks:>6} chunks {share * 100:>5.1f}%: recall {fr['recall_at_k']:.3f} "
            f"(naive {naive['recall_at_k']:.3f}) p50 {fr['p50_ms']:.1f} ms p95 "
            f"{fr['p95_ms']:.1f} ms (floor p50 {floor['p50_ms']:.1f} ms, "
            f"{fr['p50_ms'] / max(floor['p50_ms'], 1e-6):.1f}x) fga calls "
            f"{fr['fga_calls_mean']:.1f} {strategies}",
            flush=True,
        )
    return {
        "chunks": n_chunks,
        "documents": n_docs,
        "queries": n_queries,
        "build_seconds": round(build_s, 1),
        "levels": levels,
    }


async def run_all(sizes: Sequence[int], queries: int, seed: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="warrant-bench-") as workdir:
        for size in sizes:
            results.append(await run_size(size, queries, seed, workdir))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent / "results" / "retrieval.json")
    )
    args = parser.parse_args()
    results = asyncio.run(run_all(args.sizes, args.queries, args.seed))
    out = {
        "benchmark": "retrieval",
        "k": K,
        "vectors": f"synthetic (topic mixture, {LATENT}-d latent projected to {DIM}-d); not MiniLM",
        "fga": f"in-memory tuple set behind FGAClient; list_objects truncated at {LIST_LIMIT}",
        "baseline_top_k_then_check_candidates": 2 * K,
        "target_recall": 0.99,
        "sizes": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
