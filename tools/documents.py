"""The internal-document search tool: passages the acting user may view, with their sources.

The graph routes `search_internal_documents` to its `retrieve` node, which calls
`search_documents` for the user recorded in state; the tool body does the same for the user its
node resolved (`current_credentials().user_id`), so the tool also works outside the graph.
Either way only `FGARetriever` decides what is shown, and a failure says so instead of guessing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.tools import tool

from auth.audit import note_withheld
from auth.delegation import for_agent
from auth.errors import ProviderUnavailable
from settings import Settings, get_settings
from tools.base import RelationRequirement, current_credentials, declare
from vectorstore.embeddings import EmbeddingConfigError
from vectorstore.principals import PrincipalError, fga_user
from vectorstore.retriever import FGARetriever
from vectorstore.store import DocumentStore, StoreError

log = logging.getLogger(__name__)

TOOL_NAME = "search_internal_documents"
MAX_QUESTION_CHARS = 2000

_stores: dict[tuple[Any, ...], DocumentStore] = {}
_stores_lock = threading.Lock()


@dataclass
class DocumentSearch:
    """What a search found for one user: passages, or why there are none."""

    question: str
    passages: list[Document] = field(default_factory=list)
    error: str | None = None

    def sources(self) -> list[dict[str, Any]]:
        """One entry per document cited, in rank order (JSON-safe, for a ToolMessage artifact)."""
        seen: dict[str, dict[str, Any]] = {}
        for doc in self.passages:
            doc_id = str(doc.metadata.get("doc_id"))
            seen.setdefault(
                doc_id,
                {"doc_id": doc_id, "title": doc.metadata.get("title"), "chunks": []},
            )["chunks"].append(doc.metadata.get("chunk_index"))
        return list(seen.values())

    def render(self) -> str:
        """The text the model reads: numbered passages and their sources, or a plain reason."""
        if self.error:
            return f"Document search is unavailable: {self.error}"
        if not self.passages:
            return "No internal documents you can access match this question."
        parts = [f"Found {len(self.passages)} passage(s) from documents you can access:"]
        for n, doc in enumerate(self.passages, start=1):
            title = doc.metadata.get("title") or doc.metadata.get("doc_id")
            parts.append(f"[{n}] {title} (doc {doc.metadata.get('doc_id')})\n{doc.page_content}")
        cited = ", ".join(f"{s['title']} (doc {s['doc_id']})" for s in self.sources())
        parts.append(f"Sources: {cited}")
        return "\n\n".join(parts)


def fga_user_for(identity: str) -> str:
    """The FGA user for an acting identity: `user:<email>` as is, or an email address."""
    identity = identity.strip()
    if identity.startswith("user:"):
        return fga_user(identity[5:])
    return fga_user(identity)


def document_store(settings: Settings | None = None) -> DocumentStore:
    """The process's store for the configured collection (opened once, then reused)."""
    settings = settings or get_settings()
    key = (
        settings.chroma_mode,
        str(settings.data_dir.resolve()),
        settings.chroma_host,
        settings.chroma_port,
        settings.chroma_collection,
        settings.embeddings,
    )
    with _stores_lock:
        found = _stores.get(key)
        if found is not None and found.changed_elsewhere():
            # another process ingested: reopen, or this one would search a stale index
            found.close()
            del _stores[key]
            found = None
        if found is None:
            found = _stores[key] = DocumentStore.open(settings)
        return found


async def search_documents(
    question: str,
    user: str,
    *,
    fga: Any = None,
    store: DocumentStore | None = None,
    k: int | None = None,
    settings: Settings | None = None,
) -> DocumentSearch:
    """Search for `user` (an email or `user:<email>`); never raises for FGA or store failures."""
    settings = settings or get_settings()
    question = question.strip()
    if not question:
        return DocumentSearch(question, error="the question is empty.")
    if len(question) > MAX_QUESTION_CHARS:
        return DocumentSearch(
            question[:80], error=f"the question is longer than {MAX_QUESTION_CHARS} characters."
        )
    try:
        principal = fga_user_for(user)
    except PrincipalError:
        log.warning("document search refused: the acting user has no usable email")
        return DocumentSearch(question, error="your identity carries no email to check access.")
    owned_client = fga is None
    try:
        # Opening Chroma (folders, SQLite, the embedding model) and counting are blocking
        # calls: off the event loop, which `langgraph dev` guards (and other runs share).
        if store is None:
            store = await asyncio.to_thread(document_store, settings)
        if isinstance(store, DocumentStore) and await asyncio.to_thread(store.count) == 0:
            # Nothing ingested yet: nothing to show, and nothing to ask FGA about.
            return DocumentSearch(question)
        if fga is None:
            from auth.fga.factory import make_fga_client

            try:
                fga = await asyncio.to_thread(make_fga_client, settings)
            except ValueError as exc:
                log.warning("document search: FGA is misconfigured: %s", exc)
                return DocumentSearch(
                    question, error="FGA is not configured correctly; nothing was shown."
                )
        retriever = FGARetriever(
            user=principal,
            fga=for_agent(fga, settings),
            store=store,
            k=k or settings.retrieval_k,
            fga_timeout=settings.fga_timeout_seconds,
        )
        found = await retriever.search(question)
        await note_withheld(principal, TOOL_NAME, found.withheld_docs, found.revoked_docs)
        return DocumentSearch(question, passages=found.documents)
    except ProviderUnavailable as exc:
        log.warning("document search for %s failed closed: %s", principal, exc.reason)
        return DocumentSearch(question, error=str(exc))
    except EmbeddingConfigError as exc:
        log.warning("document search: embeddings misconfigured: %s", exc)
        return DocumentSearch(
            question, error="document search is not configured correctly; nothing was shown."
        )
    except StoreError as exc:
        log.warning("document search for %s: store failure: %s", principal, exc)
        return DocumentSearch(
            question, error="the document store is unavailable right now; nothing was shown."
        )
    finally:
        if owned_client and fga is not None:
            try:
                await fga.close()
            except Exception:
                log.debug("closing the FGA client failed", exc_info=True)


@tool(TOOL_NAME)
async def search_internal_documents(question: str) -> str:
    """Search the organisation's internal documents (plans, notes, policies, memos).

    Returns the most relevant passages that the current user is allowed to read, each with the
    document it comes from. Use it for questions about internal or private information.
    """
    user = current_credentials().user_id
    if not user:
        return "Document search is unavailable: no signed-in user to check access for."
    return (await search_documents(question, user)).render()


declare(search_internal_documents, relation=RelationRequirement("can_view", "doc"))
