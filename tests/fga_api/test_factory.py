"""`make_fga_client`: the backend is chosen by settings alone."""

from __future__ import annotations

import pytest

from auth.fga.factory import make_fga_client
from auth.fga.local import LocalFGA
from auth.fga.openfga_client import OpenFGA
from settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WARRANT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_local_backend_is_the_embedded_engine_in_the_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = make_fga_client(get_settings())
    assert isinstance(client, LocalFGA)
    assert client.store.path == str(tmp_path / "fga.sqlite3")
    await client.close()


async def test_openfga_backend_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARRANT_FGA_BACKEND", "openfga")
    monkeypatch.setenv("WARRANT_FGA_API_URL", "https://api.us1.fga.dev")
    monkeypatch.setenv("WARRANT_FGA_STORE_ID", "01HZZZZZZZZZZZZZZZZZZZZZZZ")
    monkeypatch.setenv("WARRANT_FGA_CLIENT_ID", "cid")
    monkeypatch.setenv("WARRANT_FGA_CLIENT_SECRET", "csecret")
    monkeypatch.setenv("WARRANT_FGA_API_TOKEN_ISSUER", "auth.fga.dev")
    monkeypatch.setenv("WARRANT_FGA_TIMEOUT_SECONDS", "2.5")
    get_settings.cache_clear()
    client = make_fga_client()
    assert isinstance(client, OpenFGA)
    assert client.api_url == "https://api.us1.fga.dev"
    assert client.store_id == "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    assert client.timeout_seconds == 2.5
    assert "csecret" not in repr(client)
    await client.close()


def test_openfga_backend_without_store_id_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARRANT_FGA_BACKEND", "openfga")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="WARRANT_FGA_STORE_ID"):
        make_fga_client()
