"""The agent's GitHub search tool: public repositories, searched as the user, with a vault token.

`search_github_repositories` declares a GitHub connection with no OAuth scope: searching public
repositories needs only a token that identifies the user (GitHub then allows 30 searches a
minute instead of 10). Asking for `public_repo` or `repo` would let the agent write to the
user's repositories, which a search never needs: least privilege means no scope.

Errors: a refused token raises `ConnectionTokenRejected` (the tools node invalidates the vault's
token, retries once, then asks to reconnect); a used-up rate limit raises `GitHubRateLimited`
(a `ProviderUnavailable` saying when it resets); a query GitHub rejects comes back to the model
as a tool error it can correct.
"""

from __future__ import annotations

import json

from langchain_core.tools import ToolException, tool

from settings import get_settings
from tools.base import ConnectionRequirement, current_credentials, declare
from tools.github_client import GitHubClient, GitHubRequestError

GITHUB_CONNECTION = "github"  # the connection's name at the identity provider
GITHUB_SEARCH_SCOPES: tuple[str, ...] = ()
MAX_RESULTS = 5


def github_client(connection: str = GITHUB_CONNECTION) -> GitHubClient:
    """A client for this tool call: the vault token the node resolved, the configured API."""
    s = get_settings()
    return GitHubClient(
        s.github_api_url,
        current_credentials().connection_token(connection),
        connection=connection,
        timeout=s.github_timeout_seconds,
    )


@tool
async def search_github_repositories(query: str) -> str:
    """Search public GitHub repositories.

    `query` uses GitHub's search syntax: words plus qualifiers such as `stars:>100`,
    `language:python`, `topic:ai`. Returns the most-starred matches as JSON: full_name,
    description, stars, url and language.
    """
    query = query.strip()
    if not query:
        raise ToolException("The search query is empty: give a few words to search for.")
    try:
        total, repos = await github_client().search_repositories(
            query, per_page=MAX_RESULTS, sort="stars"
        )
    except GitHubRequestError as exc:
        # A bad query is the model's to fix: say what GitHub objected to.
        raise ToolException(f"GitHub rejected the search query {query!r}: {exc}") from None
    return json.dumps(
        {
            "query": query,
            "total_count": total,
            "repositories": [repo.as_dict() for repo in repos],
        },
        ensure_ascii=False,
    )


search_github_repositories.handle_tool_error = True


declare(
    search_github_repositories,
    connection=ConnectionRequirement(GITHUB_CONNECTION, GITHUB_SEARCH_SCOPES),
)
