"""The documents part of the offline demo: alice's and bob's private, shared and public files."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from vectorstore.ingest import Ingestor, IngestOutcome, Sharing

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_CORPUS = PROJECT_ROOT / "vectorstore" / "demo_corpus"

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


# What the ingesting process needs to write where the caller reads (documents and FGA tuples).
_INGEST_SETTINGS = (
    "data_dir",
    "fga_backend",
    "fga_api_url",
    "fga_store_id",
    "fga_model_id",
    "chroma_mode",
    "chroma_host",
    "chroma_port",
    "chroma_collection",
    "embeddings",
    "openai_api_key",
    "openai_base_url",
)
INGEST_TIMEOUT_SECONDS = 300.0


class DemoIngestError(RuntimeError):
    """The separate ingesting process failed; the message says how (never a token)."""


def ingest_environment(settings: Any) -> dict[str, str]:
    """This environment without its `WARRANT_*`, plus `settings`' storage, as `WARRANT_*`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARRANT_")}
    for name in _INGEST_SETTINGS:
        value = getattr(settings, name, None)
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if name == "data_dir":
            value = Path(value).absolute()
        env[f"WARRANT_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    return env


async def ingest_demo_corpus_elsewhere(settings: Any) -> list[IngestOutcome]:
    """Ingest the demo corpus (model, tuples, chunks) from a fresh Python process.

    Chroma's native index writer puts memory it never initialised into its segment files
    (`data_level0.bin`); in a process that has handled token responses, that memory can hold
    them. A process that never saw a token has none to write, so the demo ingests from one.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vectorstore.demo",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ingest_environment(settings),
        cwd=str(PROJECT_ROOT),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), INGEST_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DemoIngestError(
            f"ingesting the demo corpus took longer than {INGEST_TIMEOUT_SECONDS:.0f} s"
        ) from None
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["no message"]
        raise DemoIngestError(f"ingesting the demo corpus failed: {lines[-1]}")
    try:
        return [IngestOutcome(**entry) for entry in json.loads(out.decode())]
    except (ValueError, TypeError) as exc:
        raise DemoIngestError(f"the ingesting process answered nonsense ({exc})") from None


async def _ingest_here() -> list[IngestOutcome]:
    from auth.fga.factory import make_fga_client
    from vectorstore.store import DocumentStore

    fga = make_fga_client()
    store = DocumentStore.open()
    try:
        return await prepare_demo_documents(fga, store)
    finally:
        await fga.close()
        store.close()


def main() -> int:
    """`python -m vectorstore.demo`: ingest the demo corpus where settings say; JSON outcomes."""
    try:
        outcomes = asyncio.run(_ingest_here())
    except Exception as exc:
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write(json.dumps([asdict(o) for o in outcomes]) + "\n")
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        sys.stderr.write(f"{o.source}: {o.error}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
