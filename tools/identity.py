"""`who_am_i`: the identity the agent acts for, needing no authority beyond that identity.

It shows that a resumed run (after an interrupt, a restart, or a callback) still acts for the
user the thread recorded at its start, not for whoever happened to resume it. The node that runs
tools puts the recorded identity in scope; the tool reads it, never a token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from langchain_core.tools import ToolException, tool


@dataclass(frozen=True)
class ActingIdentity:
    """The recorded acting user as a tool sees it (no credential)."""

    sub: str
    email: str | None = None


_acting: ContextVar[ActingIdentity | None] = ContextVar("warrant_acting_identity", default=None)


@contextlib.contextmanager
def acting_identity_scope(identity: ActingIdentity) -> Iterator[None]:
    """Make the acting user visible to tool bodies for the duration of one call."""
    reset = _acting.set(identity)
    try:
        yield
    finally:
        _acting.reset(reset)


def current_acting_identity() -> ActingIdentity | None:
    """The acting user of the tool call in progress, if a Warrant node set one."""
    return _acting.get()


@tool
def who_am_i() -> str:
    """Say which signed-in user the agent is acting for (user id and email)."""
    identity = current_acting_identity()
    if identity is None:
        raise ToolException("No signed-in user is recorded for this conversation.")
    if identity.email:
        return f"You are {identity.email} (user id {identity.sub})."
    return f"You are the user with id {identity.sub}."


who_am_i.handle_tool_error = True
