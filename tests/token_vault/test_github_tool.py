"""The GitHub search tool and client: results for the model, and each GitHub failure typed."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from auth.errors import ConnectionTokenRejected, ProviderUnavailable
from devstack.github_api import create_github_app
from settings import get_settings
from tests.token_vault.helpers import github_grant, serve
from tools.base import ConnectionRequirement, ToolCredentials, credentials_scope, requirements_of
from tools.github import search_github_repositories
from tools.github_client import GitHubClient, GitHubRateLimited, GitHubRequestError


@pytest.fixture
def github(tmp_path, monkeypatch):
    app = create_github_app(get_settings(), db_path=tmp_path / "gh.sqlite")
    with serve(app) as url:
        monkeypatch.setenv("WARRANT_GITHUB_API_URL", url)
        get_settings.cache_clear()
        yield url
    get_settings.cache_clear()


async def _token(url: str, scopes: str = "") -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        return (await github_grant(http, scopes=scopes))["access_token"]


async def _call(token: str, query: str):
    with credentials_scope(ToolCredentials({"github": token}, user_id="auth0|alice")):
        return await search_github_repositories.ainvoke({"query": query})


def test_tool_declares_a_github_connection_with_least_privilege() -> None:
    req = requirements_of(search_github_repositories)
    assert req.connection == ConnectionRequirement("github", ())
    assert req.approval is None
    schema = search_github_repositories.args
    assert set(schema) == {"query"}  # the model never sees a token argument


async def test_search_returns_top_results_without_the_token(github, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = await _token(github)
    result = await _call(token, "ai")
    body = json.loads(result)
    repos = body["repositories"]
    assert body["total_count"] > 5 and len(repos) == 5
    assert [r["stars"] for r in repos] == sorted((r["stars"] for r in repos), reverse=True)
    assert set(repos[0]) == {"full_name", "description", "stars", "url", "language"}
    assert all(r["url"].startswith("https://github.com/") for r in repos)
    assert token not in result and token not in caplog.text


async def test_bad_query_is_a_tool_error_the_model_can_fix(github) -> None:
    token = await _token(github)
    result = await _call(token, "stars:>many")
    assert "GitHub rejected the search query" in result and "stars:>many" in result
    assert "empty" in await _call(token, "   ")


async def test_revoked_token_raises_for_the_node_to_retry(github) -> None:
    s = get_settings()
    token = await _token(github)
    async with httpx.AsyncClient(base_url=github) as http:
        revoked = await http.request(
            "DELETE",
            f"/applications/{s.devstack_github_client_id}/token",
            json={"access_token": token},
            auth=(s.devstack_github_client_id, s.devstack_github_client_secret.get_secret_value()),
        )
        assert revoked.status_code == 204
    with pytest.raises(ConnectionTokenRejected) as caught:
        await _call(token, "ai")
    assert caught.value.connection == "github" and token not in str(caught.value)


async def test_search_rate_limit_says_when_it_resets(github) -> None:
    s = get_settings()
    token = await _token(github)
    async with httpx.AsyncClient(base_url=github) as http:
        await http.post(
            "/_devstack/rate-limit/alice/exhaust",
            auth=(s.devstack_github_client_id, s.devstack_github_client_secret.get_secret_value()),
        )
    with pytest.raises(GitHubRateLimited) as caught:
        await _call(token, "ai")
    message = str(caught.value)
    assert "rate limit is used up" in message and "resets at" in message and "UTC" in message
    assert isinstance(caught.value, ProviderUnavailable) and caught.value.reset_at


def _client(response: httpx.Response) -> tuple[GitHubClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return GitHubClient("https://api.github.test", "ghu_SECRET", http=http), seen


async def test_client_sends_githubs_headers() -> None:
    client, seen = _client(httpx.Response(200, json={"total_count": 0, "items": []}))
    assert await client.search_repositories("ai", per_page=3, sort="stars") == (0, [])
    request = seen[0]
    assert request.headers["authorization"] == "Bearer ghu_SECRET"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.url.params["q"] == "ai" and request.url.params["per_page"] == "3"
    assert "ghu_SECRET" not in repr(client)


@pytest.mark.parametrize("status", [403, 429])
async def test_client_rate_limits_403_and_429(status: int) -> None:
    client, _ = _client(
        httpx.Response(
            status,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1900000000"},
            json={"message": "API rate limit exceeded for user ID 1."},
        )
    )
    with pytest.raises(GitHubRateLimited, match="resets at 17:46:40 UTC") as caught:
        await client.search_repositories("ai")
    assert caught.value.reset_at == 1_900_000_000


async def test_client_secondary_rate_limit_uses_retry_after() -> None:
    client, _ = _client(
        httpx.Response(
            403,
            headers={"retry-after": "30"},
            json={"message": "You have exceeded a secondary rate limit"},
        )
    )
    with pytest.raises(GitHubRateLimited, match=r"in 30 s"):
        await client.get_user()


async def test_client_missing_scope_is_a_rejected_token_naming_the_scope() -> None:
    client, _ = _client(
        httpx.Response(
            404,
            headers={"x-accepted-oauth-scopes": "gist", "x-oauth-scopes": "read:user"},
            json={"message": "Not Found"},
        )
    )
    with pytest.raises(ConnectionTokenRejected) as caught:
        await client.create_gist({"a.md": "x"})
    assert caught.value.missing_scopes == ("gist",)


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (
            httpx.Response(401, json={"message": "Bad credentials"}),
            ConnectionTokenRejected,
            "refused",
        ),
        (
            httpx.Response(403, json={"message": "Repository access blocked"}),
            GitHubRequestError,
            "Repository access blocked",
        ),
        (
            httpx.Response(
                422,
                json={
                    "message": "Validation Failed",
                    "errors": [{"message": "The search is longer than 256 characters."}],
                },
            ),
            GitHubRequestError,
            "longer than 256",
        ),
        (httpx.Response(500, text="oops"), ProviderUnavailable, "HTTP 500"),
        (httpx.Response(200, text="<html>"), ProviderUnavailable, "not a JSON object"),
        (httpx.Response(200, json={"items": "nope"}), ProviderUnavailable, "no results list"),
        (
            httpx.Response(200, json={"total_count": 1, "items": [{"id": 1}]}),
            ProviderUnavailable,
            "malformed",
        ),
        (httpx.Response(302, text=""), ProviderUnavailable, "unexpected HTTP 302"),
    ],
)
async def test_client_failures_are_typed(response, error, words) -> None:
    client, _ = _client(response)
    with pytest.raises(error, match=words) as caught:
        await client.search_repositories("ai")
    assert "ghu_SECRET" not in str(caught.value)


async def test_client_unreachable_and_timeout() -> None:
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        await GitHubClient("http://127.0.0.1:9", "t", timeout=2).get_user()

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = GitHubClient(
        "https://x.test", "t", http=httpx.AsyncClient(transport=httpx.MockTransport(slow))
    )
    with pytest.raises(ProviderUnavailable, match="did not answer in time"):
        await client.get_user()


async def test_tool_outside_a_node_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="outside a Warrant node"):
        await search_github_repositories.ainvoke({"query": "ai"})
