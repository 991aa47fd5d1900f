"""Turning files into searchable, access-controlled documents: chunks in Chroma, tuples in FGA.

A document is a file; its id is the file name's slug unless given. Each file is loaded (text,
Markdown, HTML, PDF), split, embedded in batches, and stored together with the FGA tuples that
say who may see it. Re-ingesting is idempotent by content hash: unchanged files are skipped,
changed ones replaced. A file that cannot be read, is empty or too large fails on its own with a
clear message, and a failure while storing leaves neither chunks nor new tuples behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from auth.fga.client import FGAClient, TupleKey
from settings import Settings, get_settings
from vectorstore.principals import (
    PUBLIC,
    PrincipalError,
    fga_doc,
    fga_folder,
    fga_group_members,
    fga_user,
    slug,
)
from vectorstore.store import (
    CHUNK_INDEX,
    CONTENT_HASH,
    DOC_ID,
    SOURCE,
    TITLE,
    DocumentStore,
    StoreError,
)

log = logging.getLogger(__name__)

Kind = Literal["text", "markdown", "html", "pdf"]
SUPPORTED: dict[str, Kind] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}

Status = Literal["added", "replaced", "unchanged", "failed"]
Progress = Callable[[int, int], None]


class IngestError(Exception):
    """One file or document could not be ingested; `str()` says which and why."""


@dataclass(frozen=True)
class Sharing:
    """Who may see an ingested document: its owner, and optionally viewers, groups, the public."""

    owner: str
    viewers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    public: bool = False
    folder: str | None = None

    def tuples(self, doc_id: str) -> list[TupleKey]:
        """The FGA tuples this sharing stands for (raises PrincipalError on a bad name)."""
        obj = fga_doc(doc_id)
        keys = [TupleKey(fga_user(self.owner), "owner", obj)]
        keys += [TupleKey(fga_user(v), "viewer", obj) for v in self.viewers]
        keys += [TupleKey(fga_group_members(g), "viewer", obj) for g in self.groups]
        if self.public:
            keys.append(TupleKey(PUBLIC, "viewer", obj))
        if self.folder:
            keys.append(TupleKey(fga_folder(self.folder), "parent", obj))
        return list(dict.fromkeys(keys))


@dataclass
class PreparedDocument:
    """A file read and split, not yet stored."""

    doc_id: str
    source: str
    title: str
    content_hash: str
    chunks: list[str]

    def chunk_ids(self) -> list[str]:
        return [f"{self.doc_id}:{self.content_hash[:16]}:{i}" for i in range(len(self.chunks))]

    def metadatas(self) -> list[dict[str, str | int]]:
        return [
            {
                DOC_ID: self.doc_id,
                CHUNK_INDEX: i,
                TITLE: self.title,
                SOURCE: self.source,
                CONTENT_HASH: self.content_hash,
            }
            for i in range(len(self.chunks))
        ]


@dataclass
class IngestOutcome:
    """What happened to one file."""

    source: str
    status: Status
    doc_id: str | None = None
    chunks: int = 0
    error: str | None = None


@dataclass
class _Plan:
    doc: PreparedDocument
    missing_tuples: list[TupleKey]
    old_chunk_ids: list[str]
    status: Status
    existing_ids: set[str] = field(default_factory=set)
    vectors: list[list[float]] = field(default_factory=list)


def _supported_files_under(folder: Path) -> Iterable[Path]:
    # os.walk skips what vanishes while it walks (a busy temporary folder); Path.rglob raises.
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if path.suffix.lower() in SUPPORTED and path.is_file():
                yield path


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files named directly, plus the supported files under named folders (sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(_supported_files_under(path))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def _load(path: Path, kind: Kind) -> list[Document]:
    from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader

    if kind == "pdf":
        return PyPDFLoader(str(path), mode="single").load()
    if kind == "html":
        return BSHTMLLoader(
            str(path),
            open_encoding="utf-8",
            bs_kwargs={"features": "html.parser"},
            get_text_separator="\n",
        ).load()
    return TextLoader(str(path), encoding="utf-8").load()


def _title(path: Path, kind: Kind, docs: Sequence[Document], text: str) -> str:
    meta_title = str(docs[0].metadata.get("title") or "").strip() if docs else ""
    if meta_title and meta_title != "None":
        return meta_title[:200]
    if kind == "markdown":
        for line in text.splitlines():
            if line.startswith("# "):
                return line[2:].strip()[:200]
    return path.stem.replace("_", " ").replace("-", " ").strip()[:200] or path.name


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost cause (TextLoader wraps decoding errors in a bare RuntimeError)."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def prepare(
    path: Path,
    *,
    doc_id: str | None = None,
    settings: Settings | None = None,
) -> PreparedDocument:
    """Read and split one file, or raise IngestError saying why it cannot be ingested."""
    settings = settings or get_settings()
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise IngestError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r} "
            f"(supported: {', '.join(sorted(SUPPORTED))})"
        )
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise IngestError(f"{path}: not a regular file")
        if size > settings.ingest_max_bytes:
            raise IngestError(
                f"{path}: too large ({size} bytes; the limit is {settings.ingest_max_bytes}, "
                "WARRANT_INGEST_MAX_BYTES)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise IngestError(f"{path}: the file is empty")
    try:
        docs = _load(path, kind)
    except Exception as exc:  # loaders raise their parsers' own errors (pypdf, bs4)
        cause = _root_cause(exc)
        if isinstance(cause, UnicodeDecodeError):
            raise IngestError(f"{path}: not UTF-8 text ({cause.reason})") from exc
        raise IngestError(f"{path}: cannot read the {kind} file ({cause})") from exc
    text = "\n\n".join(d.page_content for d in docs).strip()
    if not text:
        raise IngestError(f"{path}: no text found (empty, or a PDF without a text layer)")
    if kind == "markdown":
        splitter = RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN,
            chunk_size=settings.ingest_chunk_size,
            chunk_overlap=settings.ingest_chunk_overlap,
        )
    else:
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=settings.ingest_chunk_size, chunk_overlap=settings.ingest_chunk_overlap
        )
    chunks = [c for c in splitter.split_text(text) if c.strip()]
    try:
        identifier = slug(doc_id) if doc_id else slug(path.stem)
        fga_doc(identifier)
    except PrincipalError as exc:
        raise IngestError(f"{path}: {exc}") from exc
    return PreparedDocument(
        doc_id=identifier,
        source=str(path.resolve()),
        title=_title(path, kind, docs, text),
        content_hash=hashlib.sha256(raw).hexdigest(),
        chunks=chunks,
    )


class Ingestor:
    """Stores documents and their access tuples; one per store and FGA client."""

    def __init__(
        self,
        store: DocumentStore,
        fga: FGAClient,
        *,
        settings: Settings | None = None,
        batch_size: int = 64,
    ) -> None:
        self.store = store
        self.fga = fga
        self.settings = settings or get_settings()
        self.batch_size = batch_size

    async def ingest(
        self,
        paths: Iterable[Path | str],
        sharing: Sharing,
        *,
        doc_id: str | None = None,
        progress: Progress | None = None,
    ) -> list[IngestOutcome]:
        """Ingest every file; each outcome says added, replaced, unchanged or failed (why)."""
        files = expand_paths(paths)
        if doc_id is not None and len(files) != 1:
            raise IngestError("--id names one document: give exactly one file with it")
        outcomes: dict[int, IngestOutcome] = {}
        plans: dict[int, _Plan] = {}
        seen: dict[str, Path] = {}
        for n, path in enumerate(files):
            try:
                doc = prepare(path, doc_id=doc_id, settings=self.settings)
                if doc.doc_id in seen:
                    raise IngestError(
                        f"{path}: document id {doc.doc_id!r} is also {seen[doc.doc_id]} in this "
                        "run; rename one or ingest it separately with --id"
                    )
                seen[doc.doc_id] = path
                plans[n] = await self._plan(doc, sharing)
            except (IngestError, StoreError) as exc:
                outcomes[n] = IngestOutcome(str(path), "failed", error=str(exc))
            except PrincipalError as exc:
                outcomes[n] = IngestOutcome(str(path), "failed", error=f"{path}: {exc}")

        to_embed = [p for p in plans.values() if p.status != "unchanged"]
        try:
            self._embed(to_embed, progress)
        except Exception as exc:
            for n, plan in list(plans.items()):
                if plan.status != "unchanged":
                    outcomes[n] = IngestOutcome(
                        plan.doc.source, "failed", plan.doc.doc_id, error=f"embedding failed: {exc}"
                    )
                    del plans[n]

        for n, plan in plans.items():
            try:
                await self._apply(plan)
                outcomes[n] = IngestOutcome(
                    plan.doc.source, plan.status, plan.doc.doc_id, len(plan.doc.chunks)
                )
            except (IngestError, StoreError) as exc:
                outcomes[n] = IngestOutcome(
                    plan.doc.source, "failed", plan.doc.doc_id, error=str(exc)
                )
        return [outcomes[n] for n in sorted(outcomes)]

    async def _plan(self, doc: PreparedDocument, sharing: Sharing) -> _Plan:
        existing = self.store.chunks_of(doc.doc_id)
        sources = {str(m.get(SOURCE)) for _, m in existing}
        if existing and doc.source not in sources:
            raise IngestError(
                f"{doc.source}: document id {doc.doc_id!r} already holds "
                f"{', '.join(sorted(sources))}; pass another id with --id"
            )
        wanted = sharing.tuples(doc.doc_id)
        current = await self._read(fga_doc(doc.doc_id))
        owners = {t.user for t in current if t.relation == "owner"}
        owner = fga_user(sharing.owner)
        if owners and owner not in owners:
            raise IngestError(
                f"{doc.source}: document {doc.doc_id!r} is owned by someone else; "
                "the owner can share it with `warrant share`"
            )
        have = {(t.user, t.relation, t.object) for t in current}
        missing = [t for t in wanted if (t.user, t.relation, t.object) not in have]
        hashes = {m.get(CONTENT_HASH) for _, m in existing}
        new_ids = set(doc.chunk_ids())
        if hashes == {doc.content_hash} and {i for i, _ in existing} == new_ids:
            return _Plan(doc, missing, [], "unchanged")
        old = [i for i, _ in existing if i not in new_ids]
        status: Status = "replaced" if existing else "added"
        return _Plan(doc, missing, old, status, existing_ids={i for i, _ in existing})

    async def _read(self, obj: str) -> list[TupleKey]:
        try:
            return await self.fga.read(object=obj)
        except Exception as exc:
            raise IngestError(f"cannot read the access tuples of {obj} from FGA ({exc})") from exc

    def _embed(self, plans: Sequence[_Plan], progress: Progress | None) -> None:
        total = sum(len(p.doc.chunks) for p in plans)
        done = 0
        if progress:
            progress(done, total)
        for plan in plans:
            vectors: list[list[float]] = []
            chunks = plan.doc.chunks
            for start in range(0, len(chunks), self.batch_size):
                batch = chunks[start : start + self.batch_size]
                vectors += [list(map(float, v)) for v in self.store.embedding.embed(batch)]
                done += len(batch)
                if progress:
                    progress(done, total)
            plan.vectors = vectors

    async def _apply(self, plan: _Plan) -> None:
        doc = plan.doc
        if plan.missing_tuples:
            try:
                await self.fga.write(writes=plan.missing_tuples)
            except Exception as exc:
                raise IngestError(
                    f"{doc.source}: cannot write access tuples to FGA ({exc}); nothing was stored"
                ) from exc
        if plan.status == "unchanged":
            return
        ids = doc.chunk_ids()
        try:
            self.store.add(ids, doc.chunks, plan.vectors, doc.metadatas())
        except StoreError as exc:
            # Leave no half document: drop whatever landed (never the previous version's
            # chunks), and the tuples this run added.
            try:
                self.store.delete_ids([i for i in ids if i not in plan.existing_ids])
            except StoreError:
                log.warning("could not remove partial chunks of %s", doc.doc_id)
            if plan.missing_tuples:
                try:
                    await self.fga.write(deletes=plan.missing_tuples)
                except Exception:
                    log.warning("could not roll back the new tuples of %s", doc.doc_id)
            raise IngestError(f"{doc.source}: {exc}; nothing was stored") from exc
        # The new version is complete before the old one goes: a reader never sees neither.
        self.store.delete_ids(plan.old_chunk_ids)

    # -- sharing and removal -------------------------------------------------------------

    def _known(self, doc_id: str) -> str:
        obj = fga_doc(doc_id)
        if not self.store.chunks_of(doc_id):
            raise IngestError(f"no document {doc_id!r}: ingest it first")
        return obj

    @staticmethod
    def _sharing_tuples(
        obj: str, emails: Sequence[str], groups: Sequence[str], public: bool
    ) -> list[TupleKey]:
        keys = [TupleKey(fga_user(e), "viewer", obj) for e in emails]
        keys += [TupleKey(fga_group_members(g), "viewer", obj) for g in groups]
        if public:
            keys.append(TupleKey(PUBLIC, "viewer", obj))
        if not keys:
            raise IngestError("say whom to share with: --with EMAIL, --group NAME or --public")
        return keys

    async def share(
        self,
        doc_id: str,
        *,
        emails: Sequence[str] = (),
        groups: Sequence[str] = (),
        public: bool = False,
    ) -> list[TupleKey]:
        """Make the document viewable; returns the tuples that were actually added."""
        obj = self._known(doc_id)
        keys = self._sharing_tuples(obj, emails, groups, public)
        have = {(t.user, t.relation, t.object) for t in await self._read(obj)}
        new = [t for t in keys if (t.user, t.relation, t.object) not in have]
        if new:
            try:
                await self.fga.write(writes=new)
            except Exception as exc:
                raise IngestError(f"cannot write to FGA ({exc}); nothing was shared") from exc
        return new

    async def unshare(
        self,
        doc_id: str,
        *,
        emails: Sequence[str] = (),
        groups: Sequence[str] = (),
        public: bool = False,
    ) -> list[TupleKey]:
        """Withdraw viewer access; returns the tuples that were actually removed."""
        obj = fga_doc(doc_id)
        keys = self._sharing_tuples(obj, emails, groups, public)
        have = {(t.user, t.relation, t.object) for t in await self._read(obj)}
        gone = [t for t in keys if (t.user, t.relation, t.object) in have]
        if gone:
            try:
                await self.fga.write(deletes=gone)
            except Exception as exc:
                raise IngestError(f"cannot write to FGA ({exc}); nothing was unshared") from exc
        return gone

    async def delete(self, doc_id: str) -> int:
        """Remove a document: its chunks first (so it is never visible half-gone), then tuples."""
        obj = fga_doc(doc_id)
        chunk_ids = [i for i, _ in self.store.chunks_of(doc_id)]
        tuples = await self._read(obj)
        if not chunk_ids and not tuples:
            raise IngestError(f"no document {doc_id!r}")
        self.store.delete_ids(chunk_ids)
        if tuples:
            try:
                await self.fga.write(deletes=tuples)
            except Exception as exc:
                raise IngestError(
                    f"the chunks of {doc_id!r} are gone but its tuples could not be removed "
                    f"({exc}); run the delete again"
                ) from exc
        return len(chunk_ids)
