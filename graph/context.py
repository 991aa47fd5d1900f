"""The runtime context (`context_schema`): who calls, and the caller's own token.

Plain Python callers pass `Context(user_id=..., user_email=..., subject_token=...)` to
`graph.ainvoke(..., context=...)`. The context is never checkpointed. On the LangGraph server
the identity comes from the server's auth instead, and the token from `auth.credentials`: the
token fields are left out of the published JSON schema, so the server drops them from any
context a client sends (a token never travels through the run API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic.json_schema import SkipJsonSchema

from auth.token_vault import SUBJECT_TOKEN_TYPE_ACCESS


@dataclass(frozen=True)
class Context:
    """Run-scoped facts about the caller; the token fields never print."""

    user_id: str | None = None
    user_email: str | None = None
    subject_token: SkipJsonSchema[str | None] = field(default=None, repr=False)
    subject_token_type: SkipJsonSchema[str] = field(default=SUBJECT_TOKEN_TYPE_ACCESS, repr=False)
