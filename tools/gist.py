"""The agent's Gist tool: publishing a public Gist changes the world, so each call is approved.

`create_public_gist` declares two requirements: a CIBA approval (the user approves this exact
call on another channel, for the app's audience with scope `create:gist`) and a GitHub
connection with the `gist` scope (a short-lived Token Vault token). The `approval` node runs it
at most once per approval; the body only ever sees the tokens through `current_credentials()`.
An approved Gist's description ends with its approval's marker, so that when GitHub's answer is
lost the node can find out from the user's Gists whether it was created (`find_gist_by_marker`).
"""

from __future__ import annotations

from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field, ValidationError, model_validator

from auth.errors import ProviderUnavailable
from settings import get_settings
from tools.approved_action import ApprovedAction, current_approved_action, register_reconciler
from tools.base import ApprovalRequirement, ConnectionRequirement, declare
from tools.github import GITHUB_CONNECTION, github_client
from tools.github_client import GitHubOutcomeUnknown, GitHubRequestError

GIST_SCOPES: tuple[str, ...] = ("gist",)
APPROVAL_SCOPES: tuple[str, ...] = ("openid", "create:gist")
MAX_CONTENT_BYTES = 1_000_000  # GitHub truncates gist files beyond 1 MB
MAX_FILENAME = 100
# How far back through the user's Gists a reconciliation looks (100 a page, newest first).
RECONCILE_PAGES = 5


def _check(description: str, content: str, filename: str) -> str:
    """The cleaned file name; a `ToolException` the model can act on for anything unusable."""
    name = filename.strip()
    if not name:
        raise ToolException("The Gist needs a file name, for example warrant.md.")
    if "/" in name or "\\" in name or len(name) > MAX_FILENAME or name in {".", ".."}:
        raise ToolException(
            f"{filename!r} is not a usable Gist file name: no slashes, at most {MAX_FILENAME} "
            "characters."
        )
    if not content.strip():
        raise ToolException("The Gist's content is empty: GitHub refuses empty files.")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise ToolException("The Gist's content is larger than 1 MB; make it shorter.")
    if len(description) > 1000:
        raise ToolException("The Gist's description is longer than 1000 characters.")
    return name


class GistArguments(BaseModel):
    """The Gist tool's arguments, checked when the call is validated: before the user is ever
    asked to approve it (an approval for a Gist that can never be created is wasted)."""

    description: str = Field(description="One line describing the Gist.")
    content: str = Field(description="The file's text.")
    filename: str = Field(default="warrant.md", description="The file name, e.g. notes.md.")

    @model_validator(mode="after")
    def _usable(self) -> GistArguments:
        try:
            _check(self.description, self.content, self.filename)
        except ToolException as exc:
            raise ValueError(str(exc)) from None
        return self


def _validation_message(exc: ValidationError) -> str:
    """What a direct call with unusable arguments answers (the graph checks them earlier)."""
    return "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in exc.errors())


@tool(args_schema=GistArguments)
async def create_public_gist(description: str, content: str, filename: str = "warrant.md") -> str:
    """Create a PUBLIC GitHub Gist (anyone can read it) with one file; returns its URL.

    Needs the user's approval on their phone for each call. `description`: one line;
    `content`: the file's text; `filename`: the file name, e.g. notes.md or hello.py.
    """
    name = _check(description, content, filename)
    action = current_approved_action()
    try:
        gist = await github_client(GITHUB_CONNECTION).create_gist(
            {name: content}, description=described(description, action), public=True
        )
    except GitHubRequestError as exc:
        # A refused gist (validation) is the model's to fix: say what GitHub objected to.
        raise ToolException(f"GitHub refused to create the Gist: {exc}") from None
    except GitHubOutcomeUnknown as exc:
        if action is not None:
            action.outcome_unknown = True  # the approval node looks for the Gist's marker
        raise ToolException(
            f"{exc}: the Gist may or may not exist. Look at your Gists before asking again."
        ) from None
    url = gist.get("html_url") or gist.get("url")
    if not isinstance(url, str) or not url:
        raise ToolException("GitHub created the Gist but returned no URL for it.")
    return url


def described(description: str, action: ApprovedAction | None) -> str:
    """The Gist's description: the user's, followed by the approval's marker when approved (so
    that the Gist can be found again if GitHub's answer is lost)."""
    text = description.strip()
    if action is None:
        return text
    return f"{text} [{action.marker}]" if text else f"[{action.marker}]"


async def find_gist_by_marker(action: ApprovedAction) -> str | None:
    """The URL of the user's Gist that carries `action`'s marker, None when there is none.

    Raises `ProviderUnavailable` (and the connection errors) when GitHub cannot be asked: an
    unanswered question is not a "no".
    """
    client = github_client(GITHUB_CONNECTION)
    needle = f"[{action.marker}]"
    # A minute of slack: GitHub's clock and ours may differ; the marker decides, not the time.
    since = action.created_after - 60
    for page in range(1, RECONCILE_PAGES + 1):
        try:
            gists = await client.list_gists(per_page=100, page=page, since=since)
        except GitHubRequestError as exc:
            raise ProviderUnavailable("GitHub", f"it refused to list your Gists: {exc}") from None
        for gist in gists:
            if isinstance(gist, dict) and needle in str(gist.get("description") or ""):
                url = gist.get("html_url") or gist.get("url")
                return str(url) if url else f"gist {gist.get('id')}"
        if len(gists) < 100:
            break
    return None


create_public_gist.handle_tool_error = True
create_public_gist.handle_validation_error = _validation_message


declare(
    create_public_gist,
    connection=ConnectionRequirement(GITHUB_CONNECTION, GIST_SCOPES),
    approval=ApprovalRequirement(
        scopes=APPROVAL_SCOPES,
        audience=get_settings().audience,
        binding_message="Create public gist {filename}",
    ),
)
register_reconciler(create_public_gist.name, find_gist_by_marker)
