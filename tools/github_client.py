"""A small GitHub REST client for the agent's tools: GitHub's answers turned into typed errors.

The token comes from the Token Vault for one tool call and is only ever placed in the
Authorization header; no error message, log line or return value carries it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from auth.errors import ConnectionTokenRejected, ProviderUnavailable

API_VERSION = "2022-11-28"
_SERVICE = "GitHub"
log = logging.getLogger(__name__)


class GitHubRequestError(Exception):
    """GitHub refused the request itself (a bad query, invalid gist): the model can fix it."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class GitHubOutcomeUnknown(Exception):
    """GitHub did not answer a request that changes something after it was sent (a read timeout,
    a dropped connection): it may or may not have taken effect. Not "nothing was done"."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"GitHub did not answer after the request was sent ({reason}), so whether it took "
            "effect is not known"
        )


class GitHubRateLimited(ProviderUnavailable):
    """GitHub's rate limit is used up until `reset_at` (epoch seconds, if GitHub said)."""

    def __init__(self, reset_at: float | None, now: float) -> None:
        self.reset_at = reset_at
        if reset_at is None:
            when = "try again in a minute"
        else:
            stamp = dt.datetime.fromtimestamp(reset_at, dt.UTC).strftime("%H:%M:%S UTC")
            when = f"it resets at {stamp}, in {max(0, round(reset_at - now))} s"
        super().__init__(_SERVICE, f"its rate limit is used up; {when}")


@dataclass(frozen=True)
class RepositorySummary:
    """What the model sees of a repository."""

    full_name: str
    description: str
    stars: int
    html_url: str
    language: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "full_name": self.full_name,
            "description": self.description,
            "stars": self.stars,
            "url": self.html_url,
            "language": self.language,
        }


class GitHubClient:
    """Calls GitHub's REST API with one user's short-lived token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connection: str = "github",
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._connection = connection
        self._http = http
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"GitHubClient({self._base!r}, connection={self._connection!r})"

    async def search_repositories(
        self, query: str, *, per_page: int = 5, sort: str | None = None, order: str = "desc"
    ) -> tuple[int, list[RepositorySummary]]:
        """(total matches, the first `per_page` repositories) for a GitHub search query."""
        params: dict[str, str] = {"q": query, "per_page": str(per_page), "order": order}
        if sort:
            params["sort"] = sort
        body = await self._request("GET", "/search/repositories", params=params)
        items = body.get("items")
        total = body.get("total_count")
        if not isinstance(items, list) or not isinstance(total, int):
            raise ProviderUnavailable(_SERVICE, "its search answer had no results list")
        repos = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("full_name"), str):
                raise ProviderUnavailable(_SERVICE, "its search answer had a malformed repository")
            stars = item.get("stargazers_count")
            repos.append(
                RepositorySummary(
                    full_name=item["full_name"],
                    description=str(item.get("description") or ""),
                    stars=stars if isinstance(stars, int) else 0,
                    html_url=str(item.get("html_url") or ""),
                    language=item.get("language")
                    if isinstance(item.get("language"), str)
                    else None,
                )
            )
        return total, repos

    async def create_gist(
        self, files: Mapping[str, str], *, description: str = "", public: bool = False
    ) -> dict[str, Any]:
        """Create a gist; GitHub's gist object (id, html_url, files...)."""
        payload = {
            "description": description,
            "public": public,
            "files": {name: {"content": content} for name, content in files.items()},
        }
        return await self._request("POST", "/gists", json=payload)

    async def get_gist(self, gist_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/gists/{gist_id}")

    async def list_gists(
        self, *, per_page: int = 100, page: int = 1, since: float | None = None
    ) -> list[dict[str, Any]]:
        """The signed-in user's gists, newest first (GitHub leaves file contents out); `since`
        (epoch seconds): only those updated at or after it."""
        params = {"per_page": str(per_page), "page": str(page)}
        if since is not None:
            stamp = dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params["since"] = stamp
        return await self._request("GET", "/gists", params=params, expect=list)

    async def get_user(self) -> dict[str, Any]:
        return await self._request("GET", "/user")

    async def _request(self, method: str, path: str, *, expect: type = dict, **kwargs: Any) -> Any:
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "warrant-agent",
        }
        url = f"{self._base}{path}"
        changes = method not in ("GET", "HEAD")
        try:
            if self._http is not None:
                response = await self._http.request(method, url, headers=headers, **kwargs)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    response = await http.request(method, url, headers=headers, **kwargs)
        except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError):
            # Never sent: GitHub cannot have acted on it.
            raise ProviderUnavailable(_SERVICE, "it could not be reached") from None
        except httpx.TimeoutException:
            if changes:
                raise GitHubOutcomeUnknown("it did not answer in time") from None
            raise ProviderUnavailable(_SERVICE, "it did not answer in time") from None
        except httpx.HTTPError as exc:
            if changes:
                raise GitHubOutcomeUnknown(f"the connection failed: {type(exc).__name__}") from None
            raise ProviderUnavailable(
                _SERVICE, f"it could not be reached: {type(exc).__name__}"
            ) from None
        # An answer, even a 5xx, is GitHub saying what happened; only silence is "unknown".
        return self._outcome(response, expect)

    def _outcome(self, response: httpx.Response, expect: type = dict) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        message = message if isinstance(message, str) else f"HTTP {status}"
        if status in (200, 201):
            if not isinstance(body, expect):
                what = "a JSON object" if expect is dict else "a JSON list"
                raise ProviderUnavailable(_SERVICE, f"its answer was not {what}")
            return body
        if status == 401:
            log.info("github: the %s token was refused (401)", self._connection)
            raise ConnectionTokenRejected(self._connection, _SERVICE)
        if status in (403, 429) and _rate_limited(response, status):
            raise GitHubRateLimited(_reset_at(response), time.time())
        missing = _missing_scopes(response)
        if status in (403, 404) and missing:
            raise ConnectionTokenRejected(self._connection, _SERVICE, missing)
        if status >= 500:
            raise ProviderUnavailable(_SERVICE, f"HTTP {status}")
        if status in (400, 403, 404, 409, 410, 422):
            raise GitHubRequestError(status, _describe(message, body))
        raise ProviderUnavailable(_SERVICE, f"unexpected HTTP {status}")


def _rate_limited(response: httpx.Response, status: int) -> bool:
    # GitHub: primary limit -> remaining 0; secondary limit -> retry-after; 429 is always a limit.
    return (
        status == 429
        or response.headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in response.headers
    )


def _reset_at(response: httpx.Response) -> float | None:
    try:
        if "retry-after" in response.headers:
            return time.time() + float(response.headers["retry-after"])
        if "x-ratelimit-reset" in response.headers:
            return float(response.headers["x-ratelimit-reset"])
    except ValueError:
        return None
    return None


def _missing_scopes(response: httpx.Response) -> tuple[str, ...]:
    """The scopes an endpoint accepts that the token lacks (GitHub's OAuth scope headers)."""
    accepted = response.headers.get("x-accepted-oauth-scopes")
    if not accepted or "x-oauth-scopes" not in response.headers:
        return ()
    granted = {s.strip() for s in response.headers["x-oauth-scopes"].split(",") if s.strip()}
    wanted = [s.strip() for s in accepted.split(",") if s.strip()]
    # Any one accepted scope is enough (GitHub lists alternatives); ask for the first.
    if any(s in granted for s in wanted):
        return ()
    return (wanted[0],) if wanted else ()


def _describe(message: str, body: Any) -> str:
    details = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        for err in body["errors"]:
            if isinstance(err, dict):
                text = err.get("message") or " ".join(
                    str(err[k]) for k in ("field", "code") if isinstance(err.get(k), str)
                )
                if text:
                    details.append(str(text))
    return f"{message}: {'; '.join(details)}" if details else message
