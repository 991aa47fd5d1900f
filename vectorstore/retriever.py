"""Retrieval that returns the best k passages a user may see, and nothing they may not.

A vector store ranks every chunk regardless of whose it is; filtering the global top k after the
fact returns almost nothing to a user who sees a small share of the corpus. `FGARetriever` picks
its strategy from what FGA says the user can see:

- **list**: `list_objects` gives the user's documents; if the list is complete and small, one
  cheap unfiltered probe is tried first (decided by the list, no FGA call), and if fewer than k
  of its candidates are visible the chunks are ranked exactly among those documents with a
  `where` filter on `doc_id`.
- **over-fetch**: otherwise it queries the unfiltered ranking in widening rounds, deciding the
  documents it has not seen yet with one `batch_check` per round, until k chunks pass or a cap.

Either way a final `batch_check` runs on exactly the documents being returned, so a revocation
between the two steps is honoured. Decisions are keyed by document id from chunk metadata (a chunk
without one is never shown). If FGA fails, is slow or answers nonsense, nothing is returned and
`ProviderUnavailable` says so. Withheld matches are logged, never told to the user.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from auth.errors import ProviderUnavailable
from auth.fga.client import CheckRequest
from vectorstore.principals import DOC_TYPE, check_fga_user, doc_id_of
from vectorstore.store import CHUNK_INDEX, DOC_ID, SOURCE, TITLE, Hit

log = logging.getLogger(__name__)

T = TypeVar("T")
Strategy = Literal["empty", "list", "overfetch"]


class ChunkIndex(Protocol):
    """What the retriever needs from a vector store (`vectorstore.store.DocumentStore`)."""

    def embed_query(self, text: str) -> list[float]: ...

    def query(
        self, embedding: Sequence[float], n: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]: ...


@dataclass
class RetrievalOutcome:
    """The passages, and how they were found (for logs, tests and the benchmark)."""

    documents: list[Document]
    strategy: Strategy
    fga_calls: int = 0
    store_queries: int = 0
    candidates_seen: int = 0
    withheld_docs: int = 0
    revoked_docs: set[str] = field(default_factory=set)


@dataclass
class _Run:
    """State of one retrieval: FGA decisions by document id, and counters."""

    decisions: dict[str, bool] = field(default_factory=dict)
    fga_calls: int = 0
    store_queries: int = 0
    candidates_seen: int = 0
    strategy: Strategy = "overfetch"
    capped: bool = False

    def denied(self) -> list[str]:
        return sorted(d for d, ok in self.decisions.items() if not ok)


class FGARetriever(BaseRetriever):
    """A LangChain retriever over a Chroma collection that asks FGA before returning anything.

    `user` is the FGA user (`user:<email>`, see `vectorstore.principals`); `relation` the
    relation the user must hold on each document (`can_view`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    user: str
    fga: Any = Field(description="an auth.fga.client.FGAClient")
    store: Any = Field(description="a vectorstore.store.DocumentStore (or any ChunkIndex)")
    relation: str = "can_view"
    object_type: str = DOC_TYPE
    k: int = 5
    # The largest allowed set that is ranked exactly with a `$in` filter.
    list_max: int = 1000
    # A list_objects answer this long may have been cut short by the server (OpenFGA's default
    # OPENFGA_LIST_OBJECTS_MAX_RESULTS is 1000); None when the client always returns everything.
    list_limit: int | None = 1000
    probe: int = 100  # list path: first try this many unfiltered candidates (0: never)
    first_fetch: int = 4  # first over-fetch round asks for k * first_fetch chunks
    growth: int = 4  # each further round asks for `growth` times more
    max_candidates: int = 5000
    fga_timeout: float = 5.0
    refill_attempts: int = 2  # searches again after the final check revoked something

    @model_validator(mode="after")
    def _refuse_unusable_settings(self) -> FGARetriever:
        """Settings under which a search could never finish, or never ask the right question."""
        check_fga_user(self.user)
        if self.first_fetch < 1:
            raise ValueError(f"first_fetch must be at least 1, got {self.first_fetch}")
        if self.growth < 2:
            raise ValueError(f"growth must be at least 2 (rounds must widen), got {self.growth}")
        if self.max_candidates < 1:
            raise ValueError(f"max_candidates must be at least 1, got {self.max_candidates}")
        if not self.fga_timeout > 0:
            raise ValueError(f"fga_timeout must be a positive number, got {self.fga_timeout}")
        if self.refill_attempts < 0:
            raise ValueError(f"refill_attempts cannot be negative, got {self.refill_attempts}")
        return self

    # -- LangChain entry points ------------------------------------------------------------

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return (await self.search(query)).documents

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.search(query)).documents
        # Called synchronously from inside an event loop: run on a loop of our own.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.search(query)).result().documents

    # -- the strategy ----------------------------------------------------------------------

    async def search(self, query: str) -> RetrievalOutcome:
        """The best `k` chunks the user may see for `query`, with how they were found."""
        # Checked again here: a field set after construction is not validated by pydantic.
        check_fga_user(self.user)
        if self.k <= 0:
            return RetrievalOutcome([], "empty")
        run = _Run()
        listed = await self._fga(
            run,
            self.fga.list_objects(self.user, self.relation, self.object_type),
            "list_objects",
        )
        if not isinstance(listed, list) or not all(isinstance(o, str) for o in listed):
            raise ProviderUnavailable("FGA", "list_objects answered something other than a list")
        allowed_ids = sorted({d for o in listed if (d := doc_id_of(o)) is not None})
        truncated = self.list_limit is not None and len(listed) >= self.list_limit
        if not allowed_ids and not truncated:
            # Never drop the filter: no document allowed means no passage at all.
            return RetrievalOutcome([], "empty", run.fga_calls)
        complete = not truncated
        for doc in allowed_ids:
            run.decisions[doc] = True
        exact = complete and len(allowed_ids) <= self.list_max
        run.strategy = "list" if exact else "overfetch"

        embedding = await asyncio.to_thread(self.store.embed_query, query)
        excluded: set[str] = set()
        revoked: set[str] = set()
        chosen: list[Hit] = []
        for _attempt in range(self.refill_attempts + 1):
            if exact:
                remaining = [d for d in allowed_ids if d not in excluded]
                if not remaining:
                    chosen = []
                    break
                chosen = await self._probe(run, embedding, set(remaining))
                if len(chosen) < self.k:
                    chosen = await self._ranked_among(run, embedding, remaining)
            else:
                chosen = await self._overfetch(run, embedding, complete)
                if len(chosen) < self.k and run.capped and allowed_ids:
                    # Rare: the cap was reached before k passed (a huge corpus, a thin share).
                    # Rank among the documents the (cut) list did name, and merge by distance.
                    listed_now = [d for d in allowed_ids if d not in excluded][: self.list_max]
                    if listed_now:
                        extra = await self._ranked_among(run, embedding, listed_now)
                        chosen = _merge(chosen, extra, self.k)
            newly_revoked = await self._final_check(run, chosen)
            if not newly_revoked:
                break
            revoked |= newly_revoked
            excluded |= newly_revoked
            chosen = [h for h in chosen if h.doc_id not in newly_revoked]
        # Whatever happened above, only chunks whose document passed the last check leave.
        chosen = [h for h in chosen if h.doc_id is not None and run.decisions.get(h.doc_id)]
        self._log_outcome(run, chosen)
        return RetrievalOutcome(
            documents=[_to_document(h) for h in chosen],
            strategy=run.strategy,
            fga_calls=run.fga_calls,
            store_queries=run.store_queries,
            candidates_seen=run.candidates_seen,
            withheld_docs=len(run.denied()),
            revoked_docs=revoked,
        )

    async def _probe(self, run: _Run, embedding: Sequence[float], allowed: set[str]) -> list[Hit]:
        """One unfiltered query decided by the complete list (no FGA call).

        A metadata filter makes Chroma scan the collection (tens of ms at 50k chunks) while an
        unfiltered query is a few ms: when the user sees a fair share of the corpus, the top
        `probe` candidates already hold their k best chunks. Fewer than k: not enough, fall back.
        """
        if self.probe <= 0:
            return []
        hits = _unique(await self._query(run, embedding, max(self.probe, self.k), None))
        for hit in hits:
            if hit.doc_id is not None and hit.doc_id not in allowed:
                run.decisions.setdefault(hit.doc_id, False)
        passing = [h for h in hits if h.doc_id in allowed]
        return passing[: self.k] if len(passing) >= self.k else []

    async def _ranked_among(
        self, run: _Run, embedding: Sequence[float], doc_ids: Sequence[str]
    ) -> list[Hit]:
        """Exact top k among the chunks of `doc_ids` (a non-empty list)."""
        hits = await self._query(run, embedding, self.k, {DOC_ID: {"$in": list(doc_ids)}})
        allowed = set(doc_ids)
        # The filter was applied by the store; we still keep only what we asked for.
        return _unique([h for h in hits if h.doc_id in allowed])[: self.k]

    async def _overfetch(self, run: _Run, embedding: Sequence[float], complete: bool) -> list[Hit]:
        """Widening rounds over the unfiltered ranking; one batch_check per round for new docs.

        The rounds query without a `where` clause on purpose: an approximate index searched under
        a large exclusion filter loses recall, while a wider unfiltered search only gains it.
        Documents decided in an earlier round are not asked about again.
        """
        n = min(self.k * self.first_fetch, self.max_candidates)
        while True:
            raw = await self._query(run, embedding, n, None)
            hits = _unique(raw)
            unknown = sorted(
                {h.doc_id for h in hits if h.doc_id is not None and h.doc_id not in run.decisions}
            )
            if unknown and complete:
                # The list was complete: whatever is not on it is not visible.
                for doc in unknown:
                    run.decisions[doc] = False
            elif unknown:
                await self._batch_check(run, unknown)
            passing = [h for h in hits if h.doc_id is not None and run.decisions.get(h.doc_id)]
            exhausted = len(raw) < n
            if len(passing) >= self.k or exhausted or n >= self.max_candidates:
                if len(passing) < self.k and not exhausted:
                    run.capped = True
                    log.warning(
                        "retrieval for %s stopped at the %d-candidate cap with %d of %d passages",
                        self.user,
                        n,
                        len(passing),
                        self.k,
                    )
                return passing[: self.k]
            n = min(n * self.growth, self.max_candidates)

    async def _final_check(self, run: _Run, chosen: Sequence[Hit]) -> set[str]:
        """Re-ask FGA about exactly the documents being returned; returns those now denied."""
        docs = sorted({h.doc_id for h in chosen if h.doc_id is not None})
        if not docs:
            return set()
        answers = await self._check_many(run, docs)
        revoked = {doc for doc, ok in answers.items() if not ok}
        for doc, ok in answers.items():
            run.decisions[doc] = ok
        if revoked:
            log.info(
                "retrieval for %s: %d document(s) lost access between search and final check",
                self.user,
                len(revoked),
            )
        return revoked

    async def _batch_check(self, run: _Run, docs: Sequence[str]) -> None:
        run.decisions.update(await self._check_many(run, docs))

    async def _check_many(self, run: _Run, docs: Sequence[str]) -> dict[str, bool]:
        """One batch_check over `docs`, keyed by position back to document ids."""
        requests = [
            CheckRequest(self.user, self.relation, f"{self.object_type}:{doc}") for doc in docs
        ]
        results = await self._fga(run, self.fga.batch_check(requests), "batch_check")
        if not isinstance(results, list) or len(results) != len(requests):
            raise ProviderUnavailable(
                "FGA", f"batch_check answered {_size(results)} results for {len(requests)} checks"
            )
        errors = [r.error for r in results if getattr(r, "error", None)]
        if errors:
            raise ProviderUnavailable("FGA", f"{len(errors)} check(s) failed: {errors[0]}")
        # `is True`: anything but an explicit yes is a no.
        return {
            doc: getattr(r, "allowed", None) is True for doc, r in zip(docs, results, strict=True)
        }

    # -- plumbing --------------------------------------------------------------------------

    async def _fga(self, run: _Run, call: Awaitable[T], what: str) -> T:
        run.fga_calls += 1
        try:
            return await asyncio.wait_for(call, timeout=self.fga_timeout)
        except ProviderUnavailable:
            raise
        except TimeoutError:
            raise ProviderUnavailable(
                "FGA", f"{what} took longer than {self.fga_timeout:g}s"
            ) from None
        except Exception as exc:
            raise ProviderUnavailable("FGA", f"{what} failed: {type(exc).__name__}") from exc

    async def _query(
        self, run: _Run, embedding: Sequence[float], n: int, where: Mapping[str, Any] | None
    ) -> list[Hit]:
        run.store_queries += 1
        hits = await asyncio.to_thread(self.store.query, embedding, n, where)
        run.candidates_seen += len(hits)
        missing = sum(1 for h in hits if h.doc_id is None)
        if missing:
            log.warning("%d chunk(s) without a document id were skipped", missing)
        return hits

    def _log_outcome(self, run: _Run, chosen: Sequence[Hit]) -> None:
        denied = run.denied()
        if denied:
            # Recorded for operators only: the user is never told these documents exist.
            log.info(
                "retrieval for %s (%s): returned %d passage(s); %d matching document(s) withheld",
                self.user,
                run.strategy,
                len(chosen),
                len(denied),
            )
            log.debug("withheld documents for %s: %s", self.user, denied)


def _size(value: object) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__


def _unique(hits: Sequence[Hit]) -> list[Hit]:
    """Drop repeated chunks (same chunk id, or same document and index) keeping rank order."""
    seen: set[tuple[Any, ...]] = set()
    out: list[Hit] = []
    for position, hit in enumerate(hits):
        if hit.doc_id is None:
            continue
        index = hit.metadata.get(CHUNK_INDEX)
        key: tuple[Any, ...]
        if hit.chunk_id:
            key = ("id", hit.chunk_id)
        elif index is not None:
            key = ("doc", hit.doc_id, index)
        else:
            key = ("pos", position)
        if key in seen:
            continue
        seen.add(key)
        out.append(hit)
    return out


def _merge(first: Sequence[Hit], second: Sequence[Hit], k: int) -> list[Hit]:
    """The k nearest of two ranked lists (unique chunks; unknown distances rank last)."""
    both = _unique([*first, *second])
    both.sort(key=lambda h: h.distance if h.distance is not None else float("inf"))
    return both[:k]


def _to_document(hit: Hit) -> Document:
    metadata = {
        DOC_ID: hit.doc_id,
        TITLE: hit.metadata.get(TITLE),
        SOURCE: hit.metadata.get(SOURCE),
        CHUNK_INDEX: hit.metadata.get(CHUNK_INDEX),
    }
    if hit.distance is not None:
        metadata["distance"] = hit.distance
    return Document(page_content=hit.text, metadata=metadata, id=hit.chunk_id)
