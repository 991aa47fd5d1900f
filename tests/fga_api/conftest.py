"""Fixtures of the FGA API tests: the devstack's OpenFGA API over a fresh SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from auth.fga.store import Store
from devstack.openfga_api import create_openfga_app
from settings import get_settings
from tests.fga_api.helpers import MODEL, ServerThread


@pytest.fixture
def fga_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "fga.sqlite3")
    yield store
    store.close()


@pytest.fixture
def api(fga_store: Store) -> Iterator[httpx.Client]:
    """A plain HTTP client of the API served by uvicorn on an ephemeral port."""
    app = create_openfga_app(get_settings(), store=fga_store, preshared_keys=[])
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def store_with_model(api: httpx.Client) -> tuple[str, str]:
    store_id = api.post("/stores", json={"name": "test-store"}).json()["id"]
    model_id = api.post(f"/stores/{store_id}/authorization-models", json=MODEL).json()[
        "authorization_model_id"
    ]
    return store_id, model_id
