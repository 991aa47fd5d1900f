"""FGARetriever: exact top k among what the user may see, final checks, and failing closed."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from auth.errors import ProviderUnavailable
from auth.fga.client import CheckResult
from settings import get_settings
from tests.vectorstore.conftest import put
from vectorstore.principals import PrincipalError
from vectorstore.retriever import FGARetriever
from vectorstore.store import DocumentStore, Hit

ALICE = "user:alice@example.com"
BOB = "user:bob@example.com"

TOPICS = {
    "garden": [
        "Tomatoes need six hours of sun.",
        "Prune roses in late winter.",
        "Compost feeds the soil.",
    ],
    "rust": [
        "The borrow checker prevents data races.",
        "Lifetimes annotate references.",
        "Cargo builds crates.",
    ],
    "sailing": [
        "Reef the mainsail in strong wind.",
        "Tacking turns the bow through the wind.",
        "A jib is a foresail.",
    ],
    "baking": [
        "Sourdough needs a lively starter.",
        "Knead dough to build gluten.",
        "Preheat the oven fully.",
    ],
    "finance": [
        "Diversify across asset classes.",
        "Index funds have low fees.",
        "Rebalance once a year.",
    ],
    "astronomy": [
        "Jupiter has dozens of moons.",
        "A light year measures distance.",
        "Saturn's rings are ice.",
    ],
}


@pytest.fixture(scope="module")
def topic_store(chroma, embedding_model):
    """The corpus is only read by these tests: embed and store it once per module."""
    store = DocumentStore.open(get_settings(), client=chroma, name="retriever-topics")
    for doc, texts in TOPICS.items():
        put(store, doc, texts)
    return store


@pytest.fixture
def corpus(topic_store, fga):
    store = topic_store
    fga.add(ALICE, "owner", "doc:garden")
    fga.add(ALICE, "owner", "doc:rust")
    fga.add(BOB, "owner", "doc:sailing")
    fga.add("user:*", "viewer", "doc:baking")
    return store


def exact_top_k(store, question: str, visible: set[str], k: int) -> list[str]:
    """Brute force: the k nearest chunk ids among chunks of visible documents."""
    got = store.collection.get(include=["embeddings", "metadatas"])
    q = np.asarray(store.embed_query(question))
    rows = [
        (1 - float(np.dot(q, np.asarray(e)) / (np.linalg.norm(q) * np.linalg.norm(e))), i)
        for i, e, m in zip(got["ids"], got["embeddings"], got["metadatas"], strict=True)
        if m["doc_id"] in visible
    ]
    return [i for _, i in sorted(rows)[:k]]


def retriever(store, fga, user=ALICE, **kw) -> FGARetriever:
    return FGARetriever(user=user, fga=fga, store=store, **kw)


@pytest.mark.parametrize("probe", [0, 100])
async def test_list_strategy_ranks_exactly_among_visible_chunks(corpus, fga, probe, monkeypatch):
    wheres = []
    real_query = corpus.query
    monkeypatch.setattr(
        corpus, "query", lambda e, n, where=None: wheres.append(where) or real_query(e, n, where)
    )
    r = retriever(corpus, fga, k=4, probe=probe)
    out = await r.search("how do I grow vegetables and write safe code")
    if probe:
        assert wheres == [None]  # the unfiltered probe found k visible chunks
    else:
        assert wheres == [{"doc_id": {"$in": ["baking", "garden", "rust"]}}]
    assert out.strategy == "list"
    ids = [d.id for d in out.documents]
    visible = {"garden", "rust", "baking"}
    assert {d.metadata["doc_id"] for d in out.documents} <= visible
    assert ids == exact_top_k(corpus, "how do I grow vegetables and write safe code", visible, 4)
    # list_objects, then one final batch_check on exactly the returned documents
    assert fga.calls == ["list_objects", "batch_check"]


async def test_empty_allowed_set_returns_nothing_without_querying(corpus, fga):
    outsider = "user:carol@example.com"
    fga.tuples = {t for t in fga.tuples if t[2] != "doc:baking"}
    r = retriever(corpus, fga, user=outsider)
    out = await r.search("sourdough starter")
    assert out.documents == [] and out.strategy == "empty"
    assert out.store_queries == 0
    assert fga.calls == ["list_objects"]


async def test_user_who_sees_everything_gets_the_global_top_k(corpus, fga):
    for doc in TOPICS:
        fga.add("user:*", "viewer", f"doc:{doc}")
    q = "moons of the outer planets"
    # list_max=2 forces over-fetching even though the list is complete
    r = retriever(corpus, fga, user="user:dave@example.com", k=3, list_max=2)
    out = await r.search(q)
    assert out.strategy == "overfetch"
    assert [d.id for d in out.documents] == exact_top_k(corpus, q, set(TOPICS), 3)
    assert [d.metadata["doc_id"] for d in out.documents] == ["astronomy"] * 3


@pytest.mark.parametrize("list_limit", [1, 2])
async def test_truncated_list_falls_back_to_overfetch_with_checks(corpus, fga, list_limit):
    fga.list_limit = list_limit
    q = "wind and sails"
    r = retriever(corpus, fga, user=BOB, k=4, list_limit=list_limit)
    out = await r.search(q)
    assert out.strategy == "overfetch"
    assert [d.id for d in out.documents] == exact_top_k(corpus, q, {"sailing", "baking"}, 4)
    assert fga.calls[0] == "list_objects" and fga.calls.count("batch_check") >= 2


@pytest.mark.parametrize("probe", [0, 100])
async def test_revocation_between_search_and_final_check(corpus, fga, probe):
    q = "garden tomatoes roses compost"

    def revoke():
        fga.tuples.discard((ALICE, "owner", "doc:garden"))

    fga.before_batch_check = revoke
    out = await retriever(corpus, fga, k=3, probe=probe).search(q)
    assert "garden" not in {d.metadata["doc_id"] for d in out.documents}
    assert out.revoked_docs == {"garden"}
    # refilled from what is still visible
    assert [d.id for d in out.documents] == exact_top_k(corpus, q, {"rust", "baking"}, 3)


async def test_revocation_in_overfetch_path(corpus, fga):
    fga.list_limit = 1
    q = "garden tomatoes roses compost"
    checks = 0

    def revoke_at_final():
        nonlocal checks
        checks += 1
        if checks >= 2:
            fga.tuples.discard((ALICE, "owner", "doc:garden"))

    fga.before_batch_check = revoke_at_final
    out = await retriever(corpus, fga, k=3, list_limit=1).search(q)
    assert all(d.metadata["doc_id"] != "garden" for d in out.documents)


@pytest.mark.parametrize("stage", ["list_objects", "batch_check"])
async def test_fga_down_returns_nothing_and_says_so(corpus, fga, stage):
    if stage == "list_objects":
        fga.fail = ConnectionError("connection refused")
    else:

        def boom():
            raise ConnectionError("connection reset")

        fga.before_batch_check = boom
    with pytest.raises(ProviderUnavailable) as err:
        await retriever(corpus, fga).search("anything about roses")
    assert "FGA" in str(err.value) and stage in str(err.value)


async def test_slow_fga_times_out(corpus, fga):
    fga.delay = 1.0
    with pytest.raises(ProviderUnavailable, match="took longer"):
        await retriever(corpus, fga, fga_timeout=0.05).search("roses")


@pytest.mark.parametrize(
    "answer",
    [
        lambda rs: rs[:-1],  # too few answers
        lambda rs: [*rs, CheckResult(True)],  # too many
        lambda rs: [CheckResult(False, error="deadline exceeded"), *rs[1:]],
        lambda rs: "yes",
    ],
)
async def test_nonsense_batch_answers_fail_closed(corpus, fga, answer):
    fga.batch_answer = answer
    with pytest.raises(ProviderUnavailable):
        await retriever(corpus, fga).search("roses and rust")


async def test_truthy_but_not_true_is_no(corpus, fga):
    fga.batch_answer = lambda rs: [CheckResult(allowed="yes") for _ in rs]  # type: ignore[arg-type]
    out = await retriever(corpus, fga).search("roses")
    assert out.documents == []


class ScriptedIndex:
    """A store that returns a fixed ranked list (duplicates, missing ids and metadata)."""

    def __init__(self, hits):
        self.hits = hits
        self.queries = []

    def embed_query(self, text):
        return [0.0]

    def query(self, embedding, n, where=None):
        self.queries.append((n, where))
        hits = self.hits
        if where and "$in" in where.get("doc_id", {}):
            hits = [h for h in hits if h.doc_id in where["doc_id"]["$in"]]
        if where and "$nin" in where.get("doc_id", {}):
            hits = [h for h in hits if h.doc_id not in where["doc_id"]["$nin"]]
        return hits[:n]


async def test_duplicate_and_missing_ids(fga):
    fga.add(ALICE, "owner", "doc:a")
    hits = [
        Hit(None, "no document id at all", {}),
        Hit("a:1", "first", {"doc_id": "a", "chunk_index": 1}),
        Hit("a:1", "first", {"doc_id": "a", "chunk_index": 1}),  # duplicate chunk
        Hit(None, "no chunk id", {"doc_id": "a", "chunk_index": 2}),
        Hit(None, "no chunk id", {"doc_id": "a", "chunk_index": 2}),  # duplicate again
        Hit("b:1", "not alice's", {"doc_id": "b", "chunk_index": 1}),
        Hit("x:1", "empty doc id", {"doc_id": "", "chunk_index": 1}),
        Hit("a:3", "third", {"doc_id": "a", "chunk_index": 3}),
    ]
    index = ScriptedIndex(hits)
    fga.list_limit = 1  # force over-fetch so unfiltered candidates are seen
    out = await FGARetriever(user=ALICE, fga=fga, store=index, k=5, list_limit=1).search("q")
    assert [d.page_content for d in out.documents] == ["first", "no chunk id", "third"]
    assert all(d.metadata["doc_id"] == "a" for d in out.documents)


async def test_filter_is_never_dropped_when_store_ignores_it(fga):
    """Even a store that ignores `where` cannot leak: results are re-filtered by doc id."""
    fga.add(ALICE, "owner", "doc:a")

    class IgnoresFilters(ScriptedIndex):
        def query(self, embedding, n, where=None):
            return self.hits[:n]

    index = IgnoresFilters(
        [Hit("b:1", "secret of b", {"doc_id": "b"}), Hit("a:1", "mine", {"doc_id": "a"})]
    )
    out = await FGARetriever(user=ALICE, fga=fga, store=index, k=2).search("q")
    assert [d.page_content for d in out.documents] == ["mine"]


async def test_langchain_async_and_sync_interfaces(corpus, fga):
    r = retriever(corpus, fga, k=2)
    docs = await r.ainvoke("borrow checker")
    assert docs and all(d.metadata["doc_id"] in {"garden", "rust", "baking"} for d in docs)
    sync_docs = await asyncio.to_thread(r.invoke, "borrow checker")
    assert [d.id for d in sync_docs] == [d.id for d in docs]


async def test_withheld_matches_are_logged_not_returned(corpus, fga, caplog):
    caplog.set_level(logging.INFO, logger="vectorstore.retriever")
    fga.list_limit = 1
    out = await retriever(corpus, fga, k=2, list_limit=1).search("reef the mainsail tacking")
    assert all(d.metadata["doc_id"] != "sailing" for d in out.documents)
    assert out.withheld_docs >= 1
    assert any("withheld" in rec.getMessage() for rec in caplog.records)
    assert all("Reef" not in rec.getMessage() for rec in caplog.records)


async def test_candidate_cap_falls_back_to_the_listed_documents(corpus, fga):
    """A truncated list and a cap too small to find k: the listed documents fill the gap."""
    fga.list_limit = 1  # lists only doc:baking for alice (sorted first)
    q = "reef the mainsail, tacking through the wind with a jib"  # bob's sailing ranks first
    r = retriever(corpus, fga, k=3, list_limit=1, max_candidates=3, first_fetch=1)
    out = await r.search(q)
    assert [d.metadata["doc_id"] for d in out.documents] == ["baking"] * 3
    assert out.store_queries >= 2  # the capped over-fetch, then the listed-documents ranking


@pytest.mark.parametrize(
    "principal",
    [
        "group:g0#member",  # a userset: the members of a group, not one user
        "user:*",  # everyone
        "user:",  # an empty id
        "",
        "doc:garden",
        "alice@example.com",  # no type at all
        "user:alice@example.com\n",
        "user:ali\tce@example.com",
        "user:alice\x00@example.com",
        "user:alice\u2028@example.com",
        "user:alice@example.com#member",
    ],
    ids=repr,
)
async def test_a_principal_that_is_not_a_user_is_refused_as_such(corpus, fga, principal):
    with pytest.raises(ValueError, match="not an FGA user"):
        retriever(corpus, fga, user=principal)
    # and if set after construction, the search refuses it before asking FGA anything
    r = retriever(corpus, fga)
    r.user = principal
    with pytest.raises(PrincipalError, match="not an FGA user"):
        await r.search("roses")
    assert fga.calls == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"growth": 1}, "growth"),
        ({"growth": 0}, "growth"),
        ({"growth": -3}, "growth"),
        ({"first_fetch": 0}, "first_fetch"),
        ({"first_fetch": -1}, "first_fetch"),
        ({"max_candidates": 0}, "max_candidates"),
        ({"fga_timeout": 0}, "fga_timeout"),
        ({"fga_timeout": float("nan")}, "fga_timeout"),
        ({"refill_attempts": -1}, "refill_attempts"),
    ],
)
def test_settings_that_could_never_finish_are_refused_when_built(corpus, fga, setting, message):
    with pytest.raises(ValueError, match=message):
        retriever(corpus, fga, **setting)


async def test_smallest_valid_widening_still_finishes(corpus, fga):
    """growth 2 and first_fetch 1 over a truncated list: rounds widen until k pass or the end."""
    fga.list_limit = 1
    r = retriever(corpus, fga, k=3, list_limit=1, first_fetch=1, growth=2)
    out = await asyncio.wait_for(r.search("roses and the borrow checker"), timeout=60)
    assert {d.metadata["doc_id"] for d in out.documents} <= {"garden", "rust", "baking"}
    assert len(out.documents) == 3
