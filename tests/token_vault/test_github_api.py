"""The local GitHub: OAuth with expiring tokens, search, gists, scopes, rate limits, revocation."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devstack.github_api import create_github_app
from devstack.github_search import SearchQueryError, generate_repositories, parse_query, search
from settings import get_settings
from tests.token_vault.helpers import callback_url, github_grant


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gh(tmp_path, clock):
    app = create_github_app(get_settings(), clock=clock, db_path=tmp_path / "gh.sqlite")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9401") as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _basic() -> dict[str, str]:
    s = get_settings()
    raw = f"{s.devstack_github_client_id}:{s.devstack_github_client_secret.get_secret_value()}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def test_generated_repositories_are_deterministic_and_realistic() -> None:
    first, second = generate_repositories(), generate_repositories()
    assert first == second and len(first) == 400
    assert len({r.full_name for r in first}) == 400
    stars = sorted(r.stargazers_count for r in first)
    assert stars[-1] > 100 * max(1, stars[len(stars) // 2])  # a long tail, as on GitHub


def test_query_syntax() -> None:
    repos = generate_repositories()
    found = search(repos, "ai stars:>100 language:python", sort="stars")
    assert found and all(r.stargazers_count > 100 and r.language == "Python" for r, _ in found)
    assert [r.stargazers_count for r, _ in found] == sorted(
        (r.stargazers_count for r, _ in found), reverse=True
    )
    assert all(
        r.stargazers_count >= 10 and r.stargazers_count <= 50
        for r, _ in search(repos, "stars:10..50")
    )
    assert all("ai" in r.topics for r, _ in search(repos, "topic:ai"))
    assert all(r.owner == "alice" for r, _ in search(repos, "user:alice"))
    assert all(not r.fork for r, _ in search(repos, "stars:>0"))
    assert all(r.fork for r, _ in search(repos, "fork:only"))
    assert all(r.language != "Python" for r, _ in search(repos, "stars:>0 -language:python"))
    assert all("agent" in r.name for r, _ in search(repos, "agent in:name"))
    for bad in ["", "stars:>abc", "x" * 257, 'unbalanced "quote', "in:nowhere"]:
        with pytest.raises(SearchQueryError):
            parse_query(bad)


async def test_oauth_flow_issues_expiring_tokens(gh) -> None:
    grant = await github_grant(gh)
    assert grant["access_token"].startswith("ghu_")
    assert grant["refresh_token"].startswith("ghr_")
    assert grant["expires_in"] == 8 * 3600
    assert grant["scope"] == "gist,read:user" and grant["token_type"] == "bearer"
    user = await gh.get("/user", headers=_auth(grant["access_token"]))
    assert user.status_code == 200 and user.json()["login"] == "alice"
    assert user.headers["x-oauth-scopes"] == "gist, read:user"


async def test_consent_page_errors(gh) -> None:
    s = get_settings()
    params = {
        "client_id": s.devstack_github_client_id,
        "redirect_uri": callback_url(),
        "scope": "gist",
        "state": "xyz",
    }
    page = await gh.get("/login/oauth/authorize", params=params)
    assert "gist" in page.text and "Authorize" in page.text
    wrong = await gh.post(
        "/login/oauth/authorize",
        data={**params, "login": "alice", "password": "nope", "decision": "authorize"},
    )
    assert wrong.status_code == 400 and "Incorrect username or password" in wrong.text
    cancel = await gh.post("/login/oauth/authorize", data={**params, "decision": "cancel"})
    query = parse_qs(urlsplit(cancel.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["xyz"]
    for bad in [
        {"client_id": "other"},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": "http://127.0.0.1:9400/elsewhere"},
        {"scope": "root"},
    ]:
        answer = await gh.get("/login/oauth/authorize", params={**params, **bad})
        assert answer.status_code == 400 and "location" not in answer.headers


async def test_token_endpoint_errors_are_githubs(gh) -> None:
    s = get_settings()
    secret = s.devstack_github_client_secret.get_secret_value()
    base = {"client_id": s.devstack_github_client_id, "client_secret": secret}
    bad_code = await gh.post(
        "/login/oauth/access_token",
        data={**base, "code": "nope"},
        headers={"Accept": "application/json"},
    )
    assert bad_code.status_code == 200 and bad_code.json()["error"] == "bad_verification_code"
    bad_client = await gh.post(
        "/login/oauth/access_token", data={**base, "client_secret": "x", "code": "c"}
    )
    assert "incorrect_client_credentials" in bad_client.text  # form-encoded by default
    bad_refresh = await gh.post(
        "/login/oauth/access_token",
        data={**base, "grant_type": "refresh_token", "refresh_token": "ghr_nope"},
        headers={"Accept": "application/json"},
    )
    assert bad_refresh.json()["error"] == "bad_refresh_token"


async def test_refresh_rotates_and_expiry_gives_bad_credentials(gh, clock) -> None:
    s = get_settings()
    grant = await github_grant(gh)
    clock.now += 8 * 3600 + 1
    expired = await gh.get("/user", headers=_auth(grant["access_token"]))
    assert expired.status_code == 401 and expired.json()["message"] == "Bad credentials"
    refreshed = await gh.post(
        "/login/oauth/access_token",
        data={
            "client_id": s.devstack_github_client_id,
            "client_secret": s.devstack_github_client_secret.get_secret_value(),
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
        },
        headers={"Accept": "application/json"},
    )
    fresh = refreshed.json()
    assert fresh["access_token"] != grant["access_token"] and fresh["scope"] == "gist,read:user"
    assert (await gh.get("/user", headers=_auth(fresh["access_token"]))).status_code == 200
    again = await gh.post(
        "/login/oauth/access_token",
        data={
            "client_id": s.devstack_github_client_id,
            "client_secret": s.devstack_github_client_secret.get_secret_value(),
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
        },
        headers={"Accept": "application/json"},
    )
    assert again.json()["error"] == "bad_refresh_token"  # a refresh token works once


async def test_revocation_by_the_app(gh) -> None:
    grant = await github_grant(gh)
    token = grant["access_token"]
    denied = await gh.request(
        "DELETE",
        f"/applications/{get_settings().devstack_github_client_id}/token",
        json={"access_token": token},
    )
    assert denied.status_code == 404
    revoked = await gh.request(
        "DELETE",
        f"/applications/{get_settings().devstack_github_client_id}/token",
        json={"access_token": token},
        headers=_basic(),
    )
    assert revoked.status_code == 204
    assert (await gh.get("/user", headers=_auth(token))).status_code == 401
    search_answer = await gh.get("/search/repositories", params={"q": "ai"}, headers=_auth(token))
    assert search_answer.status_code == 401


async def test_search_endpoint(gh) -> None:
    grant = await github_grant(gh)
    answer = await gh.get(
        "/search/repositories",
        params={"q": "ai language:python", "sort": "stars", "per_page": "5"},
        headers=_auth(grant["access_token"]),
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["total_count"] >= 5 and len(body["items"]) == 5
    stars = [i["stargazers_count"] for i in body["items"]]
    assert stars == sorted(stars, reverse=True)
    item = body["items"][0]
    assert {"full_name", "description", "html_url", "language", "topics"} <= set(item)
    assert answer.headers["x-ratelimit-resource"] == "search"
    assert answer.headers["x-ratelimit-limit"] == "30"
    assert answer.headers["x-ratelimit-remaining"] == "29"
    anonymous = await gh.get("/search/repositories", params={"q": "ai"})
    assert anonymous.status_code == 200 and anonymous.headers["x-ratelimit-limit"] == "10"
    missing = await gh.get("/search/repositories", headers=_auth(grant["access_token"]))
    assert missing.status_code == 422 and missing.json()["message"] == "Validation Failed"
    invalid = await gh.get(
        "/search/repositories", params={"q": "stars:>lots"}, headers=_auth(grant["access_token"])
    )
    assert invalid.status_code == 422
    assert "stars:>lots" in invalid.json()["errors"][0]["message"]


async def test_rate_limits_answer_429_for_search_and_403_for_core(gh, clock) -> None:
    grant = await github_grant(gh)
    headers = _auth(grant["access_token"])
    for _ in range(30):
        assert (
            await gh.get("/search/repositories", params={"q": "ai"}, headers=headers)
        ).status_code == 200
    limited = await gh.get("/search/repositories", params={"q": "ai"}, headers=headers)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) == int(clock.now + 60)
    assert "rate limit exceeded" in limited.json()["message"]
    clock.now += 61
    assert (
        await gh.get("/search/repositories", params={"q": "ai"}, headers=headers)
    ).status_code == 200
    exhaust = await gh.post("/_devstack/rate-limit/alice/exhaust?resource=core", headers=_basic())
    assert exhaust.status_code == 204
    core = await gh.get("/user", headers=headers)
    assert core.status_code == 403 and core.headers["x-ratelimit-remaining"] == "0"
    reset = await gh.post("/_devstack/rate-limit/alice/reset?resource=core", headers=_basic())
    assert reset.status_code == 204
    assert (await gh.get("/user", headers=headers)).status_code == 200
    for bad in ["/_devstack/rate-limit/alice/explode", "/_devstack/rate-limit/mallory/reset"]:
        assert (await gh.post(bad, headers=_basic())).status_code == 404
    assert (await gh.post("/_devstack/rate-limit/alice/reset")).status_code == 404


async def test_gists_need_the_gist_scope(gh) -> None:
    narrow = await github_grant(gh, scopes="read:user")
    payload = {"description": "d", "public": True, "files": {"a.md": {"content": "# hi"}}}
    refused = await gh.post("/gists", json=payload, headers=_auth(narrow["access_token"]))
    assert refused.status_code == 404
    assert refused.headers["x-accepted-oauth-scopes"] == "gist"
    assert refused.headers["x-oauth-scopes"] == "read:user"
    grant = await github_grant(gh, scopes="gist")
    created = await gh.post("/gists", json=payload, headers=_auth(grant["access_token"]))
    assert created.status_code == 201
    gist = created.json()
    assert gist["public"] is True and gist["owner"]["login"] == "alice"
    assert gist["files"]["a.md"]["content"] == "# hi"
    fetched = await gh.get(f"/gists/{gist['id']}")
    assert fetched.status_code == 200 and fetched.json()["id"] == gist["id"]
    assert (await gh.get("/gists/nope")).status_code == 404
    for bad in [{"files": {}}, {"files": {"a": {"content": ""}}}, {"public": True}]:
        answer = await gh.post("/gists", json=bad, headers=_auth(grant["access_token"]))
        assert answer.status_code == 422 and answer.json()["message"] == "Validation Failed"
    not_json = await gh.post("/gists", content=b"{", headers=_auth(grant["access_token"]))
    assert not_json.status_code == 400
    anonymous = await gh.post("/gists", json=payload)
    assert anonymous.status_code == 401


async def test_listing_gists_shows_your_own_newest_first_without_contents(gh) -> None:
    alice = _auth((await github_grant(gh, scopes="gist"))["access_token"])
    bob = _auth((await github_grant(gh, "bob", "bob-password", scopes="gist"))["access_token"])

    def gist(name: str, public: bool) -> dict:
        return {"public": public, "files": {name: {"content": f"# {name}"}}}

    made = []
    for name, public in [("one.md", True), ("two.md", False), ("three.md", True)]:
        created = await gh.post("/gists", json=gist(name, public), headers=alice)
        made.append(created.json()["id"])
    await gh.post("/gists", json=gist("bobs.md", True), headers=bob)

    listed = await gh.get("/gists", headers=alice)
    assert listed.status_code == 200
    assert [g["id"] for g in listed.json()] == made[::-1]  # secret ones included, bob's not
    assert all("content" not in f for g in listed.json() for f in g["files"].values())
    page = await gh.get("/gists?per_page=1&page=2", headers=alice)
    assert [g["id"] for g in page.json()] == [made[1]]
    anonymous = await gh.get("/gists")
    assert anonymous.status_code == 200
    assert {g["files"].popitem()[0] for g in anonymous.json()} == {"one.md", "three.md", "bobs.md"}
    assert (await gh.get("/gists?per_page=x", headers=alice)).status_code == 422
    refused = await gh.get("/gists", headers=_auth("gho_not_a_token"))
    assert refused.status_code == 401
