"""How a tool declares what authority it needs, and how it receives credentials at call time.

A tool never takes a token as an argument (the model would see it). The node that runs the tool
resolves the declared requirement (Token Vault for a connection, CIBA for an approval, FGA for a
relation) and hands the result to the tool body through a context variable scoped to that call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool

_METADATA_KEY = "warrant"


@dataclass(frozen=True)
class ConnectionRequirement:
    """The tool calls a third-party API as the user: a Token Vault exchange for these scopes."""

    connection: str
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovalRequirement:
    """The tool changes the world: the user approves each call on another channel (CIBA).

    `binding_message` is a `str.format` template over the tool's arguments and `tool`.
    """

    scopes: tuple[str, ...] = ("openid",)
    audience: str | None = None
    binding_message: str = "Approve {tool}"


@dataclass(frozen=True)
class RelationRequirement:
    """The tool reads objects the user must hold `relation` on (checked with FGA)."""

    relation: str
    object_type: str


@dataclass(frozen=True)
class ToolRequirements:
    """Everything a tool declared; empty means it needs no authority beyond the user's identity."""

    connection: ConnectionRequirement | None = None
    approval: ApprovalRequirement | None = None
    relation: RelationRequirement | None = None


def declare(
    tool: BaseTool,
    *,
    connection: ConnectionRequirement | None = None,
    approval: ApprovalRequirement | None = None,
    relation: RelationRequirement | None = None,
) -> BaseTool:
    """Attach requirements to a LangChain tool (kept in `tool.metadata`, invisible to the model)."""
    metadata = dict(tool.metadata or {})
    metadata[_METADATA_KEY] = ToolRequirements(connection, approval, relation)
    tool.metadata = metadata
    return tool


def requirements_of(tool: BaseTool) -> ToolRequirements:
    """What `tool` declared, or no requirements at all."""
    found = (tool.metadata or {}).get(_METADATA_KEY)
    return found if isinstance(found, ToolRequirements) else ToolRequirements()


@dataclass(frozen=True)
class ToolCredentials:
    """Short-lived credentials for exactly one tool call; never printed, never stored."""

    connection_tokens: dict[str, str] = field(default_factory=dict, repr=False)
    approval_token: str | None = field(default=None, repr=False)
    user_id: str | None = None

    def connection_token(self, connection: str) -> str:
        """The token for `connection`; a tool asking for one it did not declare is a bug."""
        try:
            return self.connection_tokens[connection]
        except KeyError:
            raise RuntimeError(f"no {connection} token was resolved for this tool call") from None


_current: ContextVar[ToolCredentials | None] = ContextVar("warrant_tool_credentials", default=None)


@contextlib.contextmanager
def credentials_scope(credentials: ToolCredentials) -> Iterator[None]:
    """Make `credentials` visible to the tool body for the duration of one call."""
    reset = _current.set(credentials)
    try:
        yield
    finally:
        _current.reset(reset)


def current_credentials() -> ToolCredentials:
    """The credentials the running node resolved for this tool call."""
    found = _current.get()
    if found is None:
        raise RuntimeError("tool called outside a Warrant node: no credentials were resolved")
    return found


def tool_metadata(tool: BaseTool) -> dict[str, Any]:
    """A JSON-safe description of a tool's requirements (for logs and the CLI)."""
    req = requirements_of(tool)
    return {
        "name": tool.name,
        "connection": req.connection.__dict__ if req.connection else None,
        "approval": req.approval.__dict__ if req.approval else None,
        "relation": req.relation.__dict__ if req.relation else None,
    }
