"""Ingestion: loaders, idempotent re-ingest, replacement, deletion, sharing and bad files."""

from __future__ import annotations

import pytest

from settings import get_settings
from vectorstore.ingest import IngestError, Ingestor, Sharing, prepare
from vectorstore.store import StoreError

ALICE = "alice@example.com"
BOB = "bob@example.com"


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with a text layer, written by hand (no PDF library needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture
def ingestor(store, fga):
    return Ingestor(store, fga, batch_size=2)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "plan.txt").write_text("The launch plan for Q3 is codenamed Heron.\n" * 3)
    (tmp_path / "notes.md").write_text("# Team notes\n\nWe meet on Tuesdays.\n\n## Later\n\nMore.")
    (tmp_path / "page.html").write_text(
        "<html><head><title>Benefits page</title></head>"
        "<body><p>Dental is covered.</p></body></html>"
    )
    (tmp_path / "memo.pdf").write_bytes(minimal_pdf("The quarterly memo mentions pelicans."))
    return tmp_path


async def test_ingests_each_kind_with_metadata_and_tuples(ingestor, store, fga, files):
    seen = []
    out = await ingestor.ingest(
        [files], Sharing(ALICE, viewers=(BOB,)), progress=lambda d, t: seen.append((d, t))
    )
    assert [(o.doc_id, o.status) for o in out] == [
        ("memo", "added"),
        ("notes", "added"),
        ("page", "added"),
        ("plan", "added"),
    ]
    docs = store.documents()
    assert docs["page"]["title"] == "Benefits page"
    assert docs["notes"]["title"] == "Team notes"
    assert docs["memo"]["source"].endswith("memo.pdf")
    got = store.collection.get(where={"doc_id": "memo"}, include=["documents", "metadatas"])
    assert "pelicans" in got["documents"][0]
    meta = got["metadatas"][0]
    assert set(meta) >= {"doc_id", "chunk_index", "title", "source", "content_hash"}
    assert ("user:alice@example.com", "owner", "doc:plan") in fga.tuples
    assert ("user:bob@example.com", "viewer", "doc:plan") in fga.tuples
    total = sum(d["chunks"] for d in docs.values())
    assert seen[0] == (0, total) and seen[-1] == (total, total)


async def test_reingest_unchanged_is_skipped_and_changed_is_replaced(ingestor, store, files):
    await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    before = store.collection.get(where={"doc_id": "plan"})["ids"]
    again = await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    assert again[0].status == "unchanged"
    assert store.collection.get(where={"doc_id": "plan"})["ids"] == before

    (files / "plan.txt").write_text("The plan changed: the codename is now Egret.")
    changed = await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    assert changed[0].status == "replaced"
    got = store.collection.get(where={"doc_id": "plan"}, include=["documents"])
    assert not set(got["ids"]) & set(before)
    assert all("Heron" not in text for text in got["documents"])
    assert any("Egret" in text for text in got["documents"])


async def test_reingest_adds_new_viewers_without_duplicating_tuples(ingestor, fga, files):
    await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    out = await ingestor.ingest([files / "plan.txt"], Sharing(ALICE, public=True))
    assert out[0].status == "unchanged"
    assert ("user:*", "viewer", "doc:plan") in fga.tuples


async def test_delete_removes_chunks_and_tuples(ingestor, store, fga, files):
    await ingestor.ingest([files / "plan.txt"], Sharing(ALICE, viewers=(BOB,)))
    removed = await ingestor.delete("plan")
    assert removed > 0
    assert store.collection.get(where={"doc_id": "plan"})["ids"] == []
    assert not [t for t in fga.tuples if t[2] == "doc:plan"]
    with pytest.raises(IngestError, match="no document"):
        await ingestor.delete("plan")


async def test_share_and_unshare(ingestor, fga, files):
    await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    assert not fga.can_view("user:bob@example.com", "doc:plan")
    added = await ingestor.share("plan", emails=[BOB])
    assert len(added) == 1 and fga.can_view("user:bob@example.com", "doc:plan")
    assert await ingestor.share("plan", emails=[BOB]) == []  # idempotent
    await ingestor.share("plan", groups=["eng"])
    fga.add("user:carol@example.com", "member", "group:eng")
    assert fga.can_view("user:carol@example.com", "doc:plan")
    await ingestor.unshare("plan", emails=[BOB], groups=["eng"])
    assert not fga.can_view("user:bob@example.com", "doc:plan")
    assert not fga.can_view("user:carol@example.com", "doc:plan")
    await ingestor.share("plan", public=True)
    assert fga.can_view("user:anyone@example.com", "doc:plan")
    await ingestor.unshare("plan", public=True)
    assert not fga.can_view("user:anyone@example.com", "doc:plan")
    with pytest.raises(IngestError, match="ingest it first"):
        await ingestor.share("nope", emails=[BOB])
    with pytest.raises(IngestError, match="whom"):
        await ingestor.share("plan")
    with pytest.raises(ValueError, match="not an email"):
        await ingestor.share("plan", emails=["bob"])


async def test_bad_files_fail_alone_with_clear_errors(ingestor, store, fga, files, monkeypatch):
    (files / "empty.txt").write_text("   \n")
    (files / "binary.txt").write_bytes(b"\xff\xfe\x00\x81garbage\x9f")
    (files / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (files / "image.png").write_bytes(b"\x89PNG")
    (files / "big.txt").write_text("x" * 5000)
    monkeypatch.setattr(get_settings(), "ingest_max_bytes", 4000)
    out = await ingestor.ingest(
        [
            files / "empty.txt",
            files / "binary.txt",
            files / "broken.pdf",
            files / "image.png",
            files / "big.txt",
            files / "missing.txt",
            files / "plan.txt",
        ],
        Sharing(ALICE),
    )
    by_name = {o.source.rsplit("/", 1)[-1]: o for o in out}
    assert by_name["empty.txt"].status == "failed" and "empty" in by_name["empty.txt"].error
    assert "not UTF-8" in by_name["binary.txt"].error
    assert "pdf" in by_name["broken.pdf"].error.lower()
    assert "unsupported file type" in by_name["image.png"].error
    assert "too large" in by_name["big.txt"].error
    assert "cannot read" in by_name["missing.txt"].error
    assert by_name["plan.txt"].status == "added"
    assert set(store.documents()) == {"plan"}
    assert {t[2] for t in fga.tuples} == {"doc:plan"}


async def test_pdf_without_text_layer(tmp_path):
    (tmp_path / "scan.pdf").write_bytes(minimal_pdf("").replace(b"() Tj", b""))
    with pytest.raises(IngestError, match="no text"):
        prepare(tmp_path / "scan.pdf")


async def test_store_failure_leaves_no_half_document(ingestor, store, fga, files, monkeypatch):
    def broken_add(*a, **k):
        raise StoreError("cannot store chunks: disk full")

    monkeypatch.setattr(store, "add", broken_add)
    out = await ingestor.ingest([files / "plan.txt"], Sharing(ALICE, viewers=(BOB,)))
    assert out[0].status == "failed" and "disk full" in out[0].error
    assert store.collection.get(where={"doc_id": "plan"})["ids"] == []
    assert fga.tuples == set()  # the tuples written for it were rolled back


async def test_fga_failure_stores_nothing(ingestor, store, fga, files):
    fga.fail = ConnectionError("FGA down")
    out = await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    assert out[0].status == "failed" and "FGA" in out[0].error
    assert store.count() == 0


async def test_embedding_failure_stores_nothing(ingestor, store, fga, files, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(store.embedding, "embed", broken)
    out = await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    assert out[0].status == "failed" and "embedding failed" in out[0].error
    assert store.count() == 0 and fga.tuples == set()


async def test_id_collisions_and_foreign_owner_are_refused(ingestor, store, fga, files, tmp_path):
    await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    other = tmp_path / "other"
    other.mkdir()
    (other / "plan.txt").write_text("Bob's plan, a different file with the same name.")
    out = await ingestor.ingest([other / "plan.txt"], Sharing(BOB))
    assert out[0].status == "failed" and "already holds" in out[0].error
    out = await ingestor.ingest([other / "plan.txt"], Sharing(BOB), doc_id="bob-plan")
    assert out[0].status == "added"
    # bob cannot take over alice's document by re-ingesting her file as owner
    out = await ingestor.ingest([files / "plan.txt"], Sharing(BOB))
    assert out[0].status == "failed" and "owned by someone else" in out[0].error
    assert ("user:bob@example.com", "owner", "doc:plan") not in fga.tuples
    with pytest.raises(IngestError, match="exactly one file"):
        await ingestor.ingest([files / "plan.txt", files / "notes.md"], Sharing(ALICE), doc_id="x")


async def test_duplicate_ids_in_one_run(ingestor, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("first")
    (tmp_path / "b" / "same.md").write_text("second")
    out = await ingestor.ingest(
        [tmp_path / "a" / "same.txt", tmp_path / "b" / "same.md"], Sharing(ALICE)
    )
    assert [o.status for o in out] == ["added", "failed"]
    assert "also" in out[1].error


async def test_bad_owner_email(ingestor, files):
    out = await ingestor.ingest([files / "plan.txt"], Sharing("not-an-email"))
    assert out[0].status == "failed" and "not an email" in out[0].error


async def test_failed_replacement_keeps_the_previous_version(
    ingestor, store, fga, files, monkeypatch
):
    await ingestor.ingest([files / "plan.txt"], Sharing(ALICE))
    before = store.collection.get(where={"doc_id": "plan"}, include=["documents"])
    tuples = set(fga.tuples)
    (files / "plan.txt").write_text("A new version that will fail to store.")

    def broken_add(*a, **k):
        raise StoreError("cannot store chunks: disk full")

    monkeypatch.setattr(store, "add", broken_add)
    out = await ingestor.ingest([files / "plan.txt"], Sharing(ALICE, viewers=(BOB,)))
    assert out[0].status == "failed"
    after = store.collection.get(where={"doc_id": "plan"}, include=["documents"])
    assert after["ids"] == before["ids"] and after["documents"] == before["documents"]
    assert fga.tuples == tuples  # bob's new viewer tuple was rolled back


def test_a_folder_that_vanishes_while_walked_is_skipped(tmp_path, monkeypatch) -> None:
    import os

    from vectorstore.ingest import expand_paths

    (tmp_path / "keep.md").write_text("k")
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "x.md").write_text("x")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(gone):
            raise FileNotFoundError(path)  # removed by someone else between listing and reading
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert expand_paths([tmp_path]) == [tmp_path / "keep.md"]
