"""`create_public_gist` on its own: what it declares, the Gist it makes, GitHub's refusals."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from auth.errors import ConnectionTokenRejected, ProviderUnavailable
from devstack.github_api import create_github_app
from settings import get_settings
from tests.token_vault.helpers import github_grant, serve
from tools.base import (
    ApprovalRequirement,
    ConnectionRequirement,
    ToolCredentials,
    credentials_scope,
    requirements_of,
)
from tools.gist import create_public_gist


@pytest.fixture
def github(tmp_path, monkeypatch):
    app = create_github_app(get_settings(), db_path=tmp_path / "gh.sqlite")
    with serve(app) as url:
        monkeypatch.setenv("WARRANT_GITHUB_API_URL", url)
        get_settings.cache_clear()
        yield url, app.state.store
    get_settings.cache_clear()


async def _token(url: str, scopes: str) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        return (await github_grant(http, scopes=scopes))["access_token"]


async def _call(token: str, **args):
    with credentials_scope(ToolCredentials({"github": token}, approval_token="approval-jwt")):
        return await create_public_gist.ainvoke(args)


def test_declares_an_approval_and_a_gist_connection() -> None:
    req = requirements_of(create_public_gist)
    assert req.approval == ApprovalRequirement(
        scopes=("openid", "create:gist"),
        audience=get_settings().audience,
        binding_message="Create public gist {filename}",
    )
    assert req.connection == ConnectionRequirement("github", ("gist",))
    assert set(create_public_gist.args) == {"description", "content", "filename"}


async def test_creates_one_public_gist_and_returns_its_url(github, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url, store = github
    token = await _token(url, "gist")
    result = await _call(token, description="notes", content="hello", filename="a.md")
    assert result.startswith("https://gist.github.com/alice/")
    gist_id = result.rsplit("/", 1)[1]
    gist = store.gist(gist_id)
    assert gist["public"] is True and gist["description"] == "notes"
    assert gist["files"]["a.md"]["content"] == "hello"
    assert token not in result and token not in caplog.text


async def test_a_token_without_the_gist_scope_asks_for_it(github) -> None:
    url, _ = github
    token = await _token(url, "read:user")
    with pytest.raises(ConnectionTokenRejected) as caught:
        await _call(token, description="d", content="c", filename="a.md")
    assert caught.value.missing_scopes == ("gist",)


async def test_a_revoked_token_is_rejected_as_such(github) -> None:
    with pytest.raises(ConnectionTokenRejected):
        await _call("gho_not-a-real-token", description="d", content="c", filename="a.md")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"description": "d", "content": "   ", "filename": "a.md"}, "empty"),
        ({"description": "d", "content": "c", "filename": ""}, "file name"),
        ({"description": "d", "content": "c", "filename": "../etc/passwd"}, "no slashes"),
        ({"description": "d", "content": "x" * 1_000_001, "filename": "a.md"}, "1 MB"),
    ],
)
async def test_unusable_arguments_come_back_as_clear_tool_errors(github, args, words) -> None:
    url, store = github
    token = await _token(url, "gist")
    result = await _call(token, **args)
    assert words in result
    assert store._run("SELECT count(*) FROM gists")[0][0] == 0


async def test_github_down_is_provider_unavailable(monkeypatch) -> None:
    monkeypatch.setenv("WARRANT_GITHUB_API_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await _call("t", description="d", content="c", filename="a.md")
        assert "GitHub" in str(caught.value) and "nothing was done" in str(caught.value)
    finally:
        get_settings.cache_clear()


def test_the_schema_the_model_sees_has_no_token() -> None:
    schema = json.dumps(create_public_gist.args)
    assert "token" not in schema.lower()
