"""Server mode: the same ingestion and retrieval against `chroma run` through HttpClient."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from settings import get_settings
from tests.vectorstore.memory_fga import MemoryFGA
from vectorstore.ingest import Ingestor, Sharing
from vectorstore.retriever import FGARetriever
from vectorstore.store import DocumentStore, StoreError

pytestmark = pytest.mark.server


def _listening_port(pid: int) -> int | None:
    """The TCP port a process listens on, found through /proc (it was started on port 0)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                return int(parts[1].rsplit(":", 1)[1], 16)
    return None


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(exe).exists():
        pytest.skip("the chroma CLI is not installed")
    path = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            port = _listening_port(proc.pid)
            if port:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat").is_success:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        else:
            pytest.fail("chroma run did not start listening")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def http_settings(chroma_server, monkeypatch):
    monkeypatch.setenv("WARRANT_CHROMA_MODE", "http")
    monkeypatch.setenv("WARRANT_CHROMA_PORT", str(chroma_server))
    monkeypatch.setenv("WARRANT_CHROMA_HOST", "127.0.0.1")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


async def test_ingest_and_retrieve_through_a_chroma_server(
    http_settings, embedding_model, tmp_path
):
    store = DocumentStore.open(http_settings, name="server-docs")
    fga = MemoryFGA()
    (tmp_path / "alice.txt").write_text("Alice's private plan: the launch codename is Heron.")
    (tmp_path / "bob.txt").write_text("Bob's private notes: the budget is frozen until May.")
    ingestor = Ingestor(store, fga, settings=http_settings)
    await ingestor.ingest([tmp_path / "alice.txt"], Sharing("alice@example.com"))
    await ingestor.ingest([tmp_path / "bob.txt"], Sharing("bob@example.com"))
    again = await ingestor.ingest([tmp_path / "alice.txt"], Sharing("alice@example.com"))
    assert again[0].status == "unchanged"

    # a second client (as another process would) reopens the collection with its embeddings
    reopened = DocumentStore.open(http_settings, name="server-docs", create=False)
    assert reopened.embedding.spec == "local" and reopened.count() == 2
    out = await FGARetriever(user="user:bob@example.com", fga=fga, store=reopened).search(
        "what is the launch codename"
    )
    assert [d.metadata["doc_id"] for d in out.documents] == ["bob"]
    assert all("Heron" not in d.page_content for d in out.documents)


def test_unreachable_server_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WARRANT_CHROMA_MODE", "http")
    monkeypatch.setenv("WARRANT_CHROMA_PORT", "1")
    get_settings.cache_clear()
    try:
        with pytest.raises(StoreError, match="Chroma"):
            DocumentStore.open(get_settings())
    finally:
        get_settings.cache_clear()
