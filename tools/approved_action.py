"""What an approved action knows of its approval, so that its outcome can be found out later.

An approved call runs once, but its effect can be uncertain: GitHub may time out after it
received the request, or the process may die mid-call. So each approved run carries a marker
bound to its approval (derived from the ledger record's id; public, not a secret) that the tool
writes into what it creates, and a tool may register a *reconciler* that looks for that marker
afterwards. The `approval` node uses both to record `done` with the result, or `failed`,
instead of guessing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

MARKER_PREFIX = "warrant-approval-"


def approval_marker(approval_id: str) -> str:
    """The public marker for one approval: stable for its ledger record, unique to it."""
    digest = hashlib.sha256(f"warrant approved action {approval_id}".encode()).hexdigest()
    return MARKER_PREFIX + digest[:20]


@dataclass
class ApprovedAction:
    """One approved run: its marker, when its approval was asked for (nothing it created can be
    older), and whether the tool reported that its outcome is unknown."""

    marker: str
    created_after: float
    outcome_unknown: bool = False


# Looks for what an approved run created (by its marker); the URL or id, None when none exists.
Reconciler = Callable[[ApprovedAction], Awaitable[str | None]]

_reconcilers: dict[str, Reconciler] = {}
_current: ContextVar[ApprovedAction | None] = ContextVar("warrant_approved_action", default=None)


def register_reconciler(tool_name: str, reconciler: Reconciler) -> None:
    """Declare how to find out whether an approved run of `tool_name` took effect."""
    _reconcilers[tool_name] = reconciler


def reconciler_for(tool_name: str) -> Reconciler | None:
    """The tool's reconciler, if it declared one."""
    return _reconcilers.get(tool_name)


@contextmanager
def approved_action_scope(action: ApprovedAction) -> Iterator[ApprovedAction]:
    """Make `action` visible to the tool body that runs inside this block."""
    token = _current.set(action)
    try:
        yield action
    finally:
        _current.reset(token)


def current_approved_action() -> ApprovedAction | None:
    """The approved run this tool body belongs to; None outside the approval node."""
    return _current.get()
