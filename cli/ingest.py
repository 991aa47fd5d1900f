"""`warrant ingest`, `share`, `unshare`, `forget` and `documents`: documents and who may see them.

Users are named by email and stored in FGA as `user:<email>` (see `vectorstore.principals`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from settings import Settings, get_settings

T = TypeVar("T")
console = Console()
errors = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def _fga_client(settings: Settings) -> Any:
    """The configured FGA client (embedded engine or OpenFGA server)."""
    from auth.fga.factory import make_fga_client

    return make_fga_client(settings)


async def _with_ingestor(work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store and an FGA client, run `work(ingestor)`, close the client."""
    from vectorstore.access_model import ensure_document_model
    from vectorstore.ingest import Ingestor
    from vectorstore.store import DocumentStore

    settings = get_settings()
    store = DocumentStore.open(settings)
    fga = _fga_client(settings)
    try:
        # A fresh embedded FGA store gets the document model before the first tuple is written.
        await ensure_document_model(fga)
        return await work(Ingestor(store, fga, settings=settings))
    finally:
        await fga.close()


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    from vectorstore.embeddings import EmbeddingConfigError
    from vectorstore.ingest import IngestError
    from vectorstore.principals import PrincipalError
    from vectorstore.store import StoreError

    # pypdf logs what it thinks of a damaged file ("invalid pdf header", "EOF marker not found")
    # straight to the terminal; the outcome table already says which file failed and why.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        return asyncio.run(_with_ingestor(work))
    except (IngestError, PrincipalError, StoreError, EmbeddingConfigError) as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # FGA clients raise their own errors; say which, never a trace
        raise _fail(f"{type(exc).__name__}: {exc}") from None


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (.txt .md .html .pdf)."),
    owner: str = typer.Option(..., "--owner", help="Email of the document's owner."),
    viewer: list[str] = typer.Option([], "--viewer", help="Email of a viewer (repeatable)."),
    group: list[str] = typer.Option([], "--group", help="A group whose members may view."),
    public: bool = typer.Option(False, "--public", help="Everyone may view."),
    folder: str | None = typer.Option(None, "--folder", help="Put the documents in a folder."),
    doc_id: str | None = typer.Option(None, "--id", help="Document id (one file only)."),
) -> None:
    """Ingest documents: chunks into Chroma, access tuples into FGA (idempotent)."""
    from vectorstore.ingest import Sharing

    sharing = Sharing(owner, tuple(viewer), tuple(group), public, folder)
    with Progress(
        TextColumn("embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        task = progress.add_task("embedding", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        outcomes = _run(lambda ing: ing.ingest(paths, sharing, doc_id=doc_id, progress=update))
    table = Table("document", "status", "chunks", "source")
    for o in outcomes:
        table.add_row(o.doc_id or "-", o.status, str(o.chunks), o.source)
    console.print(table)
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        errors.print(f"[red]failed:[/red] {o.error}", highlight=False)
    if not outcomes:
        raise _fail("no supported files found")
    if failed:
        raise typer.Exit(1)


def share(
    doc: str = typer.Argument(..., help="Document id."),
    with_: list[str] = typer.Option([], "--with", help="Email to share with (repeatable)."),
    group: list[str] = typer.Option([], "--group", help="Group whose members may view."),
    public: bool = typer.Option(False, "--public", help="Everyone may view."),
) -> None:
    """Let more people view a document."""
    added = _run(lambda ing: ing.share(doc, emails=with_, groups=group, public=public))
    console.print(f"{doc}: {len(added)} new viewer tuple(s)" if added else f"{doc}: already shared")


def unshare(
    doc: str = typer.Argument(..., help="Document id."),
    with_: list[str] = typer.Option([], "--with", help="Email to stop sharing with."),
    group: list[str] = typer.Option([], "--group", help="Group to stop sharing with."),
    public: bool = typer.Option(False, "--public", help="Stop sharing with everyone."),
) -> None:
    """Withdraw viewer access to a document (the owner keeps it)."""
    gone = _run(lambda ing: ing.unshare(doc, emails=with_, groups=group, public=public))
    console.print(f"{doc}: removed {len(gone)} viewer tuple(s)" if gone else f"{doc}: not shared")


def forget(doc: str = typer.Argument(..., help="Document id.")) -> None:
    """Delete a document: its chunks and its access tuples."""
    removed = _run(lambda ing: ing.delete(doc))
    console.print(f"{doc}: deleted ({removed} chunk(s))")


def documents() -> None:
    """List the ingested documents."""
    from vectorstore.store import DocumentStore, StoreError

    try:
        docs = DocumentStore.open(get_settings()).documents()
    except StoreError as exc:
        raise _fail(str(exc)) from None
    table = Table("document", "title", "chunks", "source")
    for doc_id, info in sorted(docs.items()):
        table.add_row(doc_id, str(info["title"]), str(info["chunks"]), str(info["source"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the document commands to the `warrant` app."""
    app.command("ingest")(ingest)
    app.command("share")(share)
    app.command("unshare")(unshare)
    app.command("forget")(forget)
    app.command("documents")(documents)
