"""The production FGA path: FGARetriever over the project's OpenFGA client (openfga-sdk) talking
to the devstack's OpenFGA HTTP API, including a list_objects that the server cuts short."""

from __future__ import annotations

import pytest

from auth.fga.client import TupleKey
from auth.fga.openfga_client import OpenFGA
from auth.fga.store import Store
from devstack.openfga_api import create_openfga_app
from settings import get_settings
from tests.fga_api.helpers import ServerThread
from tests.vectorstore.conftest import put
from vectorstore.retriever import FGARetriever

pytestmark = pytest.mark.server

DOCS = {f"note{i}": f"Meeting note {i}: the quarterly budget review, item {i}." for i in range(8)}
SECRET_DOC = "secret"


@pytest.fixture
def openfga(tmp_path, document_model_dict):
    store = Store(tmp_path / "fga.sqlite3")
    store_id = store.create_store("retrieval")
    store.write_model(store_id, document_model_dict)
    # list_objects answers at most 3 objects, as OpenFGA's max-results setting can
    app = create_openfga_app(get_settings(), store=store, preshared_keys=[], list_max_results=3)
    with ServerThread(app) as server:
        yield server.url, store_id
    store.close()


async def test_retriever_through_openfga_with_truncated_lists(openfga, store):
    url, store_id = openfga
    for doc, text in DOCS.items():
        put(store, doc, [text])
    put(store, SECRET_DOC, ["The quarterly budget review secret: cut 40 percent."])
    fga = OpenFGA(url, store_id, batch_size=2)
    try:
        await fga.write(
            writes=[TupleKey("user:alice@example.com", "owner", f"doc:{d}") for d in DOCS]
            + [TupleKey("user:bob@example.com", "owner", f"doc:{SECRET_DOC}")]
        )
        r = FGARetriever(user="user:alice@example.com", fga=fga, store=store, k=5, list_limit=3)
        out = await r.search("quarterly budget review secret")
        assert out.strategy == "overfetch"
        assert len(out.documents) == 5
        assert SECRET_DOC not in {d.metadata["doc_id"] for d in out.documents}
        assert all("40 percent" not in d.page_content for d in out.documents)

        bob = FGARetriever(user="user:bob@example.com", fga=fga, store=store, k=5, list_limit=3)
        out = await bob.search("quarterly budget review secret")
        assert [d.metadata["doc_id"] for d in out.documents] == [SECRET_DOC]
    finally:
        await fga.close()


async def test_openfga_down(store):
    fga = OpenFGA("http://127.0.0.1:9", "01HXXXXXXXXXXXXXXXXXXXXXXX", max_retries=0)
    try:
        from auth.errors import ProviderUnavailable

        with pytest.raises(ProviderUnavailable, match="FGA"):
            await FGARetriever(user="user:a@b.co", fga=fga, store=store).search("anything")
    finally:
        await fga.close()
