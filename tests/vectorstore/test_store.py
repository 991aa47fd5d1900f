"""The store and its registered embedding function: reopening, mismatches, offline model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings import get_settings
from vectorstore import embeddings
from vectorstore.embeddings import EmbeddingConfigError, WarrantEmbeddingFunction, validate_spec
from vectorstore.store import DocumentStore, StoreError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_model_is_loaded_once_and_offline(embedding_model):
    assert embeddings.local_model() is embedding_model
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    vectors = WarrantEmbeddingFunction("local").embed(["a cat", "a kitten", "a tax return"])
    assert len(vectors[0]) == 384
    cat, kitten, tax = (v / (sum(x * x for x in v) ** 0.5) for v in vectors)
    assert float(cat @ kitten) > float(cat @ tax)


@pytest.mark.parametrize("spec", ["", "hf:foo", "openai:", "openai"])
def test_unknown_embedding_specs_are_refused(spec):
    with pytest.raises(EmbeddingConfigError, match="unknown embeddings"):
        validate_spec(spec)


def test_openai_embeddings_need_a_key(monkeypatch):
    monkeypatch.delenv("WARRANT_OPENAI_API_KEY", raising=False)
    get_settings.cache_clear()
    try:
        fn = WarrantEmbeddingFunction("openai:text-embedding-3-small")
        assert fn.get_config() == {"spec": "openai:text-embedding-3-small"}
        with pytest.raises(EmbeddingConfigError, match="WARRANT_OPENAI_API_KEY"):
            fn.embed(["hello"])
    finally:
        get_settings.cache_clear()


def _in_subprocess(code: str, data_dir: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WARRANT_DATA_DIR": data_dir, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_collection_reopens_in_another_process_or_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("WARRANT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        store = DocumentStore.open(get_settings())
        store.add(["d:0"], ["hello"], [[1.0] + [0.0] * 383], [{"doc_id": "d"}])
    finally:
        get_settings.cache_clear()
    ok = _in_subprocess(
        "from vectorstore.store import DocumentStore\n"
        "s = DocumentStore.open(create=False)\n"
        "print(s.embedding.spec, s.count())\n",
        str(tmp_path),
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["local", "1"]
    # A process that never registered Warrant's function gets Chroma's explicit error.
    bare = _in_subprocess(
        "import chromadb, os\n"
        "c = chromadb.PersistentClient(os.environ['WARRANT_DATA_DIR'] + '/chroma')\n"
        "try:\n"
        "    c.get_collection('warrant-docs').configuration\n"
        "except ValueError as e:\n"
        "    print('REFUSED', e)\n",
        str(tmp_path),
    )
    assert "REFUSED" in bare.stdout and "warrant" in bare.stdout
    # Different embeddings configured than the collection was built with: a clear error.
    env_mismatch = subprocess.run(
        [
            sys.executable,
            "-c",
            "from vectorstore.store import DocumentStore, StoreError\n"
            "try:\n"
            "    DocumentStore.open(create=False)\n"
            "except StoreError as e:\n"
            "    print('MISMATCH', e)\n",
        ],
        env={
            **os.environ,
            "WARRANT_DATA_DIR": str(tmp_path),
            "PYTHONPATH": ROOT,
            "WARRANT_EMBEDDINGS": "openai:text-embedding-3-small",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "MISMATCH" in env_mismatch.stdout and "'local'" in env_mismatch.stdout


def test_missing_collection_without_create(tmp_path):
    import chromadb

    client = chromadb.EphemeralClient()
    with pytest.raises(StoreError, match="ingest documents first"):
        DocumentStore.open(get_settings(), client=client, name="never-made", create=False)


def test_foreign_collection_is_refused(chroma):
    chroma.create_collection("foreign", configuration={"hnsw": {"space": "l2"}})
    with pytest.raises(StoreError):
        DocumentStore.open(get_settings(), client=chroma, name="foreign")


def test_openai_embeddings_are_wired_by_setting(monkeypatch):
    """`openai:<model>` builds langchain-openai's client with the configured key and base URL."""
    monkeypatch.setenv("WARRANT_OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.setenv("WARRANT_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    get_settings.cache_clear()
    try:
        client = embeddings._openai_embeddings("text-embedding-3-small")
        assert client.model == "text-embedding-3-small"
        assert client.openai_api_base == "http://127.0.0.1:9/v1"
        assert "sk-test-not-real" not in repr(client)

        class Fake:
            def embed_documents(self, texts):
                return [[0.5, 0.5] for _ in texts]

        fn = WarrantEmbeddingFunction("openai:text-embedding-3-small")
        fn._openai = Fake()
        assert [list(v) for v in fn(["a", "b"])] == [[0.5, 0.5], [0.5, 0.5]]
    finally:
        get_settings.cache_clear()


def test_a_write_by_another_process_is_seen_after_a_reopen(tmp_path) -> None:
    """An embedded Chroma caches its index per process: `document_store` reopens it when
    another process (here: `warrant ingest`) wrote, and not after its own writes or reads."""
    from tools.documents import document_store

    repo = Path(__file__).resolve().parents[2]
    corpus = repo / "vectorstore" / "demo_corpus"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARRANT_")}
    env.update({"WARRANT_DATA_DIR": str(tmp_path), "PYTHONPATH": str(repo)})

    def ingest(name: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "ingest", str(corpus / name), "--owner", "a@b.c"],
            env=env,
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr

    ingest("heron-launch-plan.md")
    with get_settings.override(data_dir=tmp_path) as settings:
        store = document_store(settings)
        before = store.count()
        store.query(store.embed_query("Heron launch"), 3)
        assert not store.changed_elsewhere()  # reads leave the files alone
        assert document_store(settings) is store
        ingest("lisbon-offsite.md")
        assert store.changed_elsewhere()
        fresh = document_store(settings)
        assert fresh is not store and fresh.count() > before
        ids = {hit.doc_id for hit in fresh.query(fresh.embed_query("offsite"), 10)}
        assert "lisbon-offsite" in ids
