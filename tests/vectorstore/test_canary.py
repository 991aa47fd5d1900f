"""Canary leak tests: every document carries a unique secret; no secret reaches a non-viewer.

Hypothesis generates users, groups, folders, shares and questions; the oracle for "may view" is
the plain-Python model in `memory_fga`, and the FGA answering the retriever is either that or the
embedded engine (when it is available), so a bug in either shows up as a leak or a mismatch.
"""

from __future__ import annotations

import asyncio
import uuid

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.fga.client import TupleKey
from settings import get_settings
from tests.vectorstore.conftest import Truncating
from tests.vectorstore.memory_fga import MemoryFGA
from tools.documents import search_documents
from vectorstore.retriever import FGARetriever
from vectorstore.store import DocumentStore

USERS = [f"user:{name}@example.com" for name in ("alice", "bob", "carol", "dave")]
GROUPS = ["group:eng", "group:sales"]
FOLDERS = ["folder:hr", "folder:plans"]
TOPICS = [
    ("payroll", "Salary bands and the payroll calendar for next year."),
    ("roadmap", "The product roadmap: search, sharing, and offline mode."),
    ("incident", "Postmortem of the outage: the database ran out of disk."),
    ("offsite", "The team offsite is in Lisbon, with a sailing afternoon."),
    ("pricing", "New pricing tiers: free, team and enterprise plans."),
    ("hiring", "Hiring plan: two backend engineers and a designer."),
    ("security", "Security review: rotate keys, enforce hardware tokens."),
    ("garden", "The office garden needs watering twice a week in summer."),
]
SECRETS = {doc: f"CANARY-{doc}-{uuid.uuid4().hex[:10]}" for doc, _ in TOPICS}
QUESTIONS = [text.split(":")[0] for _, text in TOPICS] + [
    "what is the secret",
    "CANARY",
    "salary of engineers during the outage",
    *SECRETS.values(),
]


@pytest.fixture(scope="module")
def canary_store(embedding_model, tmp_path_factory):
    client = chromadb.PersistentClient(
        path=str(tmp_path_factory.mktemp("canary")),
        settings=ChromaSettings(anonymized_telemetry=False),
    )
    store = DocumentStore.open(get_settings(), client=client, name="canary")
    ids, texts, metas = [], [], []
    for doc, text in TOPICS:
        chunks = [
            f"{text} The secret code is {SECRETS[doc]}.",
            f"Appendix of {doc}: {text} Reference {SECRETS[doc]}.",
            f"Unrelated filler about {doc} meetings and notes.",
        ]
        for i, chunk in enumerate(chunks):
            ids.append(f"{doc}:h:{i}")
            texts.append(chunk)
            metas.append({"doc_id": doc, "chunk_index": i, "title": doc, "source": doc})
    store.add(ids, texts, store.embedding.embed(texts), metas)
    return store


share_st = st.fixed_dictionaries(
    {
        "owner": st.sampled_from(USERS),
        "viewers": st.lists(st.sampled_from(USERS), max_size=2),
        "groups": st.lists(st.sampled_from(GROUPS), max_size=1),
        "public": st.sampled_from([False, False, False, True]),
        "folder": st.none() | st.sampled_from(FOLDERS),
    }
)
world_st = st.fixed_dictionaries(
    {
        "shares": st.fixed_dictionaries({d: share_st for d, _ in TOPICS}),
        "members": st.fixed_dictionaries(
            {g: st.lists(st.sampled_from(USERS), max_size=3) for g in GROUPS}
        ),
        "folder_viewers": st.fixed_dictionaries(
            {
                f: st.lists(st.sampled_from([*USERS, *(g + "#member" for g in GROUPS)]), max_size=2)
                for f in FOLDERS
            }
        ),
        "nested": st.booleans(),
        "questions": st.lists(
            st.sampled_from(QUESTIONS) | st.text(min_size=1, max_size=40), min_size=1, max_size=3
        ),
        # every strategy: list (probe, then filtered), complete-but-large list, truncated list
        "mode": st.sampled_from(["probe", "filtered", "large", "truncated"]),
        "k": st.integers(1, 8),
    }
)


def build_world(world) -> MemoryFGA:
    fga = MemoryFGA()
    for doc, share in world["shares"].items():
        obj = f"doc:{doc}"
        fga.add(share["owner"], "owner", obj)
        for v in share["viewers"]:
            fga.add(v, "viewer", obj)
        for g in share["groups"]:
            fga.add(f"{g}#member", "viewer", obj)
        if share["public"]:
            fga.add("user:*", "viewer", obj)
        if share["folder"]:
            fga.add(share["folder"], "parent", obj)
    for g, members in world["members"].items():
        for m in members:
            fga.add(m, "member", g)
    for f, viewers in world["folder_viewers"].items():
        for v in viewers:
            fga.add(v, "viewer", f)
    if world["nested"]:
        fga.add("folder:plans", "parent", "folder:hr")
    return fga


def leaked(text: str, visible: set[str]) -> list[str]:
    return [doc for doc, secret in SECRETS.items() if secret in text and doc not in visible]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=world_st)
def test_no_secret_reaches_a_user_who_may_not_view_it(canary_store, world):
    check_world(canary_store, world, None)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=world_st)
def test_no_secret_leaks_through_the_embedded_engine(canary_store, document_model_dict, world):
    """The same, with the embedded FGA engine answering and the plain model as the oracle."""
    check_world(canary_store, world, document_model_dict)


def check_world(canary_store, world, model) -> None:
    oracle = build_world(world)
    mode = world["mode"]

    async def run() -> None:
        fga = oracle
        if model is not None:
            from auth.fga.local import LocalFGA

            fga = LocalFGA.in_memory(model)
            keys = [TupleKey(u, r, o) for (u, r, o) in sorted(oracle.tuples)]
            for start in range(0, len(keys), 100):
                await fga.write(writes=keys[start : start + 100])
        if mode == "truncated":
            fga = Truncating(fga, 2)
        for user in USERS:
            visible = {d.removeprefix("doc:") for d in oracle.visible_docs(user)}
            for question in world["questions"]:
                retriever = FGARetriever(
                    user=user,
                    fga=fga,
                    store=canary_store,
                    k=world["k"],
                    list_max=1 if mode == "large" else 1000,
                    list_limit=2 if mode == "truncated" else None,
                    probe=0 if mode == "filtered" else 100,
                )
                out = await retriever.search(question)
                returned = {d.metadata["doc_id"] for d in out.documents}
                assert returned <= visible, (user, question, returned - visible)
                for d in out.documents:
                    assert not leaked(d.page_content, visible)
                if visible:
                    # the best k the user may see: never empty when something is visible
                    assert len(out.documents) == min(world["k"], 3 * len(visible))
                else:
                    assert out.documents == []
                result = await search_documents(
                    question, user, fga=fga, store=canary_store, k=world["k"]
                )
                assert result.error is None or not question.strip()
                assert not leaked(result.render(), visible)

    asyncio.run(run())
