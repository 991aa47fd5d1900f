"""The `search_internal_documents` tool: declared relation, user from credentials, failures."""

from __future__ import annotations

import pytest

import tools.documents as documents
from tests.vectorstore.conftest import put
from tools.base import RelationRequirement, ToolCredentials, credentials_scope, requirements_of
from tools.documents import fga_user_for, search_documents, search_internal_documents
from vectorstore.store import StoreError

SECRET = "the vault code is 7319"


@pytest.fixture
def corpus(store, fga, monkeypatch):
    put(store, "vault", [f"Alice's private note: {SECRET}."], title="Vault note")
    put(store, "menu", ["The canteen serves soup on Fridays."], title="Canteen menu")
    fga.add("user:alice@example.com", "owner", "doc:vault")
    fga.add("user:*", "viewer", "doc:menu")
    # the tool opens the configured store and FGA client; point both at the test's
    import auth.fga.factory

    monkeypatch.setattr(documents, "document_store", lambda settings=None: store)
    monkeypatch.setattr(auth.fga.factory, "make_fga_client", lambda settings=None: fga)
    return store


def test_tool_declares_can_view_on_doc():
    req = requirements_of(search_internal_documents)
    assert req.relation == RelationRequirement("can_view", "doc")
    assert req.connection is None and req.approval is None
    assert search_internal_documents.name == "search_internal_documents"


async def test_tool_answers_for_the_credentialed_user(corpus):
    with credentials_scope(ToolCredentials(user_id="alice@example.com")):
        alice = await search_internal_documents.ainvoke({"question": "vault code"})
    with credentials_scope(ToolCredentials(user_id="bob@example.com")):
        bob = await search_internal_documents.ainvoke({"question": "vault code"})
    assert SECRET in alice and "Sources: Vault note (doc vault)" in alice
    assert SECRET not in bob and "Vault note" not in bob and "Canteen menu" in bob


async def test_tool_without_a_user_refuses(corpus):
    with credentials_scope(ToolCredentials(user_id=None)):
        out = await search_internal_documents.ainvoke({"question": "vault code"})
    assert "no signed-in user" in out and SECRET not in out


async def test_tool_with_a_sub_instead_of_an_email_refuses(corpus):
    with credentials_scope(ToolCredentials(user_id="auth0|alice")):
        out = await search_internal_documents.ainvoke({"question": "vault code"})
    assert "no email" in out and SECRET not in out


async def test_fga_down_is_said_plainly(corpus, fga):
    fga.fail = ConnectionError("refused")
    out = await search_documents("vault code", "alice@example.com", fga=fga, store=corpus)
    assert out.passages == [] and out.error
    text = out.render()
    assert text.startswith("Document search is unavailable: FGA is unavailable")
    assert SECRET not in text


async def test_store_down_is_said_plainly(corpus, fga):
    class Broken:
        def embed_query(self, text):
            raise StoreError("cannot embed the question: boom")

    out = await search_documents("vault code", "alice@example.com", fga=fga, store=Broken())
    assert "document store is unavailable" in out.render()


@pytest.mark.parametrize(
    ("question", "user", "message"),
    [
        ("   ", "alice@example.com", "question is empty"),
        ("x" * 3000, "alice@example.com", "longer than"),
        ("vault code", "auth0|12345", "no email"),
    ],
)
async def test_bad_input(corpus, fga, question, user, message):
    out = await search_documents(question, user, fga=fga, store=corpus)
    assert message in out.render() and SECRET not in out.render()
    assert fga.calls == []


async def test_nothing_visible_says_nothing_about_other_documents(corpus, fga):
    fga.tuples.discard(("user:*", "viewer", "doc:menu"))
    out = await search_documents("vault code", "bob@example.com", fga=fga, store=corpus)
    assert out.render() == "No internal documents you can access match this question."


def test_fga_user_for():
    assert fga_user_for("Alice@Example.com") == "user:alice@example.com"
    assert fga_user_for("user:bob@example.com") == "user:bob@example.com"
    with pytest.raises(ValueError):
        fga_user_for("user:*")


async def test_sources_are_grouped_by_document(corpus, fga):
    out = await search_documents("vault code soup", "alice@example.com", fga=fga, store=corpus)
    assert [s["doc_id"] for s in out.sources()] == [p.metadata["doc_id"] for p in out.passages]


async def test_misconfiguration_is_said_plainly(corpus, fga, monkeypatch):
    import auth.fga.factory

    def misconfigured(settings=None):
        raise ValueError("an OpenFGA store id is required (WARRANT_FGA_STORE_ID)")

    monkeypatch.setattr(auth.fga.factory, "make_fga_client", misconfigured)
    out = await search_documents("vault code", "alice@example.com", store=corpus)
    assert out.render() == (
        "Document search is unavailable: FGA is not configured correctly; nothing was shown."
    )

    from vectorstore.embeddings import EmbeddingConfigError

    class NoKey:
        def count(self):
            return 1

        def embed_query(self, text):
            raise EmbeddingConfigError("embeddings 'openai:x' need WARRANT_OPENAI_API_KEY")

    out = await search_documents("vault code", "alice@example.com", fga=fga, store=NoKey())
    assert "not configured correctly" in out.render()
