"""The documents part of the offline demo: alice's and bob's private, shared and public files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vectorstore.ingest import Ingestor, IngestOutcome, Sharing

DEMO_CORPUS = Path(__file__).resolve().parent / "demo_corpus"

# The question the demo asks as alice and as bob, and what only alice's answer may contain.
DEMO_QUESTION = "Search the internal documents: when does Project Heron launch, and its budget?"
PRIVATE_FACT = "240,000 EUR"
PRIVATE_DOC = "heron-launch-plan"
SHARED_QUESTION = "Search the internal documents: where is the team offsite?"
SHARED_FACT = "Lisbon"
PUBLIC_QUESTION = "What does the employee handbook say about paid holiday?"
PUBLIC_FACT = "27 days"

# ask(who, question) -> the agent's final answer for "alice" or "bob"
Ask = Callable[[str, str], Awaitable[str]]


@dataclass(frozen=True)
class DemoDocument:
    """One file of the demo corpus and who may see it."""

    path: Path
    sharing: Sharing


def demo_documents(corpus: Path = DEMO_CORPUS) -> list[DemoDocument]:
    """The corpus's documents with their sharing, read from its manifest."""
    manifest = yaml.safe_load((corpus / "manifest.yaml").read_text(encoding="utf-8"))
    found = []
    for entry in manifest["documents"]:
        sharing = Sharing(
            owner=entry["owner"],
            viewers=tuple(entry.get("viewers", ())),
            groups=tuple(entry.get("groups", ())),
            public=bool(entry.get("public", False)),
        )
        found.append(DemoDocument(corpus / entry["file"], sharing))
    return found


async def ingest_demo_corpus(ingestor: Ingestor) -> list[IngestOutcome]:
    """Ingest every demo document with its sharing (idempotent: re-runs skip unchanged files)."""
    outcomes: list[IngestOutcome] = []
    for doc in demo_documents():
        outcomes += await ingestor.ingest([doc.path], doc.sharing)
    return outcomes


async def prepare_demo_documents(fga: Any, store: Any) -> list[IngestOutcome]:
    """Install the document model if the FGA store has none, then ingest the corpus."""
    from vectorstore.access_model import ensure_document_model

    await ensure_document_model(fga)
    return await ingest_demo_corpus(Ingestor(store, fga))


async def documents_step(ask: Ask) -> tuple[bool, str]:
    """The demo's `documents` step, once the corpus is ingested: (ok, detail).

    Alice's question about her private plan is answered from it; bob asking the same gets
    nothing of it; both see the shared offsite notes and the public handbook.
    """
    alice = await ask("alice", DEMO_QUESTION)
    bob = await ask("bob", DEMO_QUESTION)
    checks = {
        "alice reads her private plan": PRIVATE_FACT in alice,
        "bob gets nothing of alice's plan": PRIVATE_FACT not in bob and PRIVATE_DOC not in bob,
    }
    for who in ("alice", "bob"):
        checks[f"{who} reads the shared offsite notes"] = SHARED_FACT in await ask(
            who, SHARED_QUESTION
        )
        checks[f"{who} reads the public handbook"] = PUBLIC_FACT in await ask(who, PUBLIC_QUESTION)
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        return False, "failed: " + "; ".join(failed)
    return True, (
        f"alice's private plan answered her ({PRIVATE_FACT}); bob's same question got none of "
        "it; both read the shared and the public document"
    )
