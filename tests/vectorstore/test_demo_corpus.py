"""The demo corpus: alice's private answer reaches alice only; shared and public reach both."""

from __future__ import annotations

from tools.documents import search_documents
from vectorstore.demo import DEMO_QUESTION, PRIVATE_FACT, demo_documents, ingest_demo_corpus
from vectorstore.ingest import Ingestor


async def test_demo_corpus_visibility(store, fga):
    outcomes = await ingest_demo_corpus(Ingestor(store, fga))
    assert [o.status for o in outcomes] == ["added"] * len(demo_documents())
    again = await ingest_demo_corpus(Ingestor(store, fga))
    assert {o.status for o in again} == {"unchanged"}

    alice = await search_documents(DEMO_QUESTION, "alice@example.com", fga=fga, store=store)
    bob = await search_documents(DEMO_QUESTION, "bob@example.com", fga=fga, store=store)
    assert PRIVATE_FACT in alice.render()
    assert alice.passages[0].metadata["doc_id"] == "heron-launch-plan"
    assert PRIVATE_FACT not in bob.render()
    assert "heron-launch-plan" not in {p.metadata["doc_id"] for p in bob.passages}

    for user in ("alice@example.com", "bob@example.com"):
        offsite = await search_documents("Where is the team offsite?", user, fga=fga, store=store)
        assert offsite.passages[0].metadata["doc_id"] == "lisbon-offsite"
        holidays = await search_documents(
            "How many days of paid holiday do I get?", user, fga=fga, store=store
        )
        assert holidays.passages[0].metadata["doc_id"] == "employee-handbook"
        assert "27 days" in holidays.render()

    carol = await search_documents(DEMO_QUESTION, "carol@example.com", fga=fga, store=store)
    assert {p.metadata["doc_id"] for p in carol.passages} == {"employee-handbook"}
