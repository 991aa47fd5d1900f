"""End to end through the agent graph: answers and checkpoints never carry another's secret."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from settings import get_settings
from vectorstore.demo import PRIVATE_FACT, ingest_demo_corpus
from vectorstore.ingest import Ingestor
from vectorstore.store import DocumentStore

BOB_FACT = "4.5 percent"
USERS = {
    "alice": ("auth0|alice", "alice@example.com"),
    "bob": ("auth0|bob", "bob@example.com"),
}


@pytest.fixture
async def world(tmp_path, monkeypatch, document_model_dict, embedding_model):
    from auth.fga.local import LocalFGA

    monkeypatch.setenv("WARRANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WARRANT_MODEL", "offline")
    get_settings.cache_clear()
    settings = get_settings()
    fga = LocalFGA.open(settings.path("fga.sqlite3"))
    await fga.write_model(document_model_dict)
    outcomes = await ingest_demo_corpus(Ingestor(DocumentStore.open(settings), fga))
    assert all(o.status == "added" for o in outcomes)
    await fga.close()
    yield settings
    get_settings.cache_clear()


async def ask(graph, who: str, text: str, thread: str) -> str:
    from graph.context import Context

    sub, email = USERS[who]
    out = await graph.ainvoke(
        {"messages": [HumanMessage(text)]},
        config={"configurable": {"thread_id": thread}},
        context=Context(user_id=sub, user_email=email),
    )
    return out["messages"][-1].content


async def thread_dump(saver: InMemorySaver, thread: str) -> str:
    parts = []
    async for item in saver.alist({"configurable": {"thread_id": thread}}):
        parts.append(repr(item.checkpoint))
        parts.append(repr(item.pending_writes))
        parts.append(repr(item.metadata))
    return "\n".join(parts)


async def test_answers_and_checkpoints_hold_only_what_the_user_may_see(world):
    from graph.agent import build_graph

    saver = InMemorySaver()
    graph = build_graph(checkpointer=saver)
    threads = {who: f"{who}-{uuid.uuid4().hex[:8]}" for who in USERS}
    questions = [
        "Search the internal documents about the Heron launch date and budget",
        "What do the internal documents say about the compensation review raise?",
        "Check the internal docs about the team offsite",
        "What does the handbook say about paid holiday?",
    ]
    answers: dict[str, list[str]] = {who: [] for who in USERS}
    for question in questions:
        for who in USERS:
            answers[who].append(await ask(graph, who, question, threads[who]))

    assert PRIVATE_FACT in answers["alice"][0]
    assert BOB_FACT in answers["bob"][1]
    for who in USERS:
        assert "Lisbon" in answers[who][2]
        assert "27 days" in answers[who][3]
    alice_all = "\n".join(answers["alice"]) + await thread_dump(saver, threads["alice"])
    bob_all = "\n".join(answers["bob"]) + await thread_dump(saver, threads["bob"])
    assert PRIVATE_FACT in alice_all and PRIVATE_FACT not in bob_all
    assert BOB_FACT in bob_all and BOB_FACT not in alice_all
    assert "heron-launch-plan" not in bob_all
    assert "compensation-review" not in alice_all


async def test_fga_down_in_the_graph_says_so(world, monkeypatch):
    import auth.fga.factory
    from graph.agent import build_graph

    class Down:
        async def list_objects(self, *a, **k):
            raise ConnectionError("refused")

        async def close(self):
            return None

    monkeypatch.setattr(auth.fga.factory, "make_fga_client", lambda settings=None: Down())
    graph = build_graph(checkpointer=InMemorySaver())
    answer = await ask(
        graph, "alice", "Search the internal documents about the Heron launch", "t-down"
    )
    assert "FGA is unavailable" in answer and PRIVATE_FACT not in answer


QUESTIONS = [
    "Search the internal documents about the Heron launch date and budget",
    "What do the internal documents say about the compensation review raise?",
    "Check the internal docs about the team offsite",
    "Search internal documents: secret budget numbers",
]
PEOPLE = {
    "alice": ("auth0|alice", "alice@example.com"),
    "bob": ("auth0|bob", "bob@example.com"),
    "carol": ("auth0|carol", "carol@example.com"),
}
SECRETS = {"heron-launch-plan": PRIVATE_FACT, "compensation-review": BOB_FACT}


async def test_generated_shares_never_leak_through_the_graph(world):
    """Hypothesis over who else may view each private document, and what is asked."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from auth.fga.client import TupleKey
    from auth.fga.local import LocalFGA
    from graph.agent import build_graph
    from graph.context import Context

    saver = InMemorySaver()
    graph = build_graph(checkpointer=saver)
    emails = [email for _, email in PEOPLE.values()]

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        shares=st.fixed_dictionaries(
            {doc: st.lists(st.sampled_from(emails), max_size=2, unique=True) for doc in SECRETS}
        ),
        question=st.sampled_from(QUESTIONS),
    )
    def run(shares, question):
        import asyncio

        async def once() -> None:
            fga = LocalFGA.open(world.path("fga.sqlite3"))
            try:
                old = [
                    t
                    for doc in SECRETS
                    for t in await fga.read(object=f"doc:{doc}")
                    if t.relation == "viewer"
                ]
                new = [
                    TupleKey(f"user:{e}", "viewer", f"doc:{doc}")
                    for doc, viewers in shares.items()
                    for e in viewers
                ]
                if old:
                    await fga.write(deletes=old)
                if new:
                    await fga.write(writes=new)
                for who, (sub, email) in PEOPLE.items():
                    thread = f"{who}-{uuid.uuid4().hex[:8]}"
                    await graph.ainvoke(
                        {"messages": [HumanMessage(question)]},
                        config={"configurable": {"thread_id": thread}},
                        context=Context(user_id=sub, user_email=email),
                    )
                    dump = await thread_dump(saver, thread)
                    owners = {"heron-launch-plan": "alice", "compensation-review": "bob"}
                    for doc, secret in SECRETS.items():
                        allowed = owners[doc] == who or email in shares[doc]
                        if not allowed:
                            assert secret not in dump, (who, doc, question)
                        elif doc == "heron-launch-plan" and "Heron" in question:
                            assert secret in dump, (who, question)  # the test can see leaks
            finally:
                await fga.close()

        asyncio.run(once())

    import asyncio

    await asyncio.to_thread(run)


async def test_demo_documents_step(world):
    from graph.agent import build_graph
    from vectorstore.demo import documents_step

    graph = build_graph(checkpointer=InMemorySaver())
    seen: dict[str, list[str]] = {"alice": [], "bob": []}

    async def ask_as(who: str, question: str) -> str:
        answer = await ask(graph, who, question, f"demo-{who}-{uuid.uuid4().hex[:6]}")
        seen[who].append(answer)
        return answer

    ok, detail = await documents_step(ask_as)
    assert ok, detail
    assert PRIVATE_FACT in seen["alice"][0] and PRIVATE_FACT not in "".join(seen["bob"])

    async def leaky(who: str, question: str) -> str:
        return PRIVATE_FACT  # an agent that tells everyone everything fails the step

    ok, detail = await documents_step(leaky)
    assert not ok and "bob gets nothing" in detail
