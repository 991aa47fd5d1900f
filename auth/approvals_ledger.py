"""The approvals ledger: the durable record of every CIBA approval request and its one execution.

It is what makes the approval invariants hold across resumes, restarts and concurrent callbacks:
- one request per tool call: `(user_id, thread_id, tool_call_id)` is unique, so a restart finds the
  request it already pushed instead of pushing a second one;
- at most one execution: `claim_execution` moves `approved -> executing` in one conditional
  update, and only the caller that made that move may run the action;
- the resumers' work list (`due_for_poll`, `find_by_auth_req_id`) and the audit trail (`history`).

SQLite by default (a file in the data folder); PostgreSQL for a `postgresql://` URL.
No token is ever stored here: the tokens an approval returns live in memory only.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from auth.sql_store import Schema, SQLStore, open_store


class ApprovalStatus(StrEnum):
    """Where one approval request stands; the arrows are the only moves the ledger allows."""

    PENDING = "pending"  # pushed (or being pushed) to the user, no answer yet
    APPROVED = "approved"  # the provider said yes; the action has not started
    EXECUTING = "executing"  # one caller claimed the action and is running it
    DONE = "done"  # the action ran; `outcome` says what it produced
    DENIED = "denied"  # the user said no
    EXPIRED = "expired"  # nobody answered in time
    FAILED = "failed"  # the push or the action failed; `outcome` says why


FINAL_STATUSES = frozenset(
    {ApprovalStatus.DONE, ApprovalStatus.DENIED, ApprovalStatus.EXPIRED, ApprovalStatus.FAILED}
)

_ALLOWED_MOVES: dict[ApprovalStatus, frozenset[ApprovalStatus]] = {
    ApprovalStatus.PENDING: frozenset(
        {
            ApprovalStatus.APPROVED,
            ApprovalStatus.DENIED,
            ApprovalStatus.EXPIRED,
            ApprovalStatus.FAILED,
        }
    ),
    ApprovalStatus.APPROVED: frozenset({ApprovalStatus.EXECUTING, ApprovalStatus.FAILED}),
    ApprovalStatus.EXECUTING: frozenset({ApprovalStatus.DONE, ApprovalStatus.FAILED}),
}


class LedgerError(Exception):
    """A ledger operation that the record's current state does not allow."""


def action_digest(tool_name: str, arguments: dict[str, Any]) -> str:
    """A stable digest of one action: the tool and its arguments, canonically encoded."""
    canonical = json.dumps(
        {"tool": tool_name, "args": arguments}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ApprovalRecord:
    """One row of the ledger."""

    id: str
    user_id: str
    thread_id: str
    tool_call_id: str
    tool_name: str
    action_digest: str
    binding_message: str
    status: ApprovalStatus
    created_at: float
    updated_at: float
    auth_req_id: str | None = None
    expires_at: float | None = None
    poll_interval: float = 5.0
    next_poll_at: float | None = None
    outcome: str | None = None
    polled_at: float | None = None  # a poll in flight since then, its answer not recorded

    @property
    def is_final(self) -> bool:
        """True once nothing more can happen to this request."""
        return self.status in FINAL_STATUSES

    def expired_at(self, now: float | None = None) -> bool:
        """True when the expiry the provider gave has passed (the ledger's own clock)."""
        return self.expires_at is not None and (now or time.time()) >= self.expires_at

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe view, for the audit log and the CLI."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_COLUMNS = tuple(f.name for f in fields(ApprovalRecord))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS warrant_approvals (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    action_digest TEXT NOT NULL,
    binding_message TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    auth_req_id TEXT UNIQUE,
    expires_at DOUBLE PRECISION,
    poll_interval DOUBLE PRECISION NOT NULL DEFAULT 5,
    next_poll_at DOUBLE PRECISION,
    outcome TEXT,
    polled_at DOUBLE PRECISION,
    UNIQUE (user_id, thread_id, tool_call_id)
);
CREATE INDEX IF NOT EXISTS warrant_approvals_due ON warrant_approvals (status, next_poll_at);
CREATE INDEX IF NOT EXISTS warrant_approvals_user ON warrant_approvals (user_id, created_at);
"""
# Columns added after the first release, added to older ledgers on open.
LEDGER_SCHEMA = Schema.portable(
    _SCHEMA, added_columns=(("warrant_approvals", "polled_at", "DOUBLE PRECISION"),)
)
_SCHEMA_LOCK = 7315100  # a PostgreSQL advisory lock key held while the schema is set up


def ledger_store(location: str | Path) -> SQLStore:
    """The approvals database at `location`, with the ledger's table set up; claims and
    standing approvals keep their tables next to it."""
    return open_store(location, LEDGER_SCHEMA, schema_lock=_SCHEMA_LOCK)


class ApprovalsLedger:
    """Durable approval records; every state change is one conditional SQL statement."""

    def __init__(self, location: str | Path) -> None:
        self._db = ledger_store(location)

    async def close(self) -> None:
        """Release the connection (or pool)."""
        await self._db.close()

    async def _one(self, where: str, params: Sequence[Any]) -> ApprovalRecord | None:
        rows = await self._db.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM warrant_approvals WHERE {where}",  # noqa: S608
            params,
        )
        return _record(rows[0]) if rows else None

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        """The record with this id, if any."""
        return await self._one("id = ?", (approval_id,))

    async def find(self, user_id: str, thread_id: str, tool_call_id: str) -> ApprovalRecord | None:
        """The request already made for this tool call, if any."""
        return await self._one(
            "user_id = ? AND thread_id = ? AND tool_call_id = ?", (user_id, thread_id, tool_call_id)
        )

    async def find_by_auth_req_id(self, auth_req_id: str) -> ApprovalRecord | None:
        """The record a provider's `auth_req_id` belongs to (ping callbacks arrive with it)."""
        return await self._one("auth_req_id = ?", (auth_req_id,))

    async def reserve(
        self,
        *,
        user_id: str,
        thread_id: str,
        tool_call_id: str,
        tool_name: str,
        action_digest: str,
        binding_message: str,
    ) -> tuple[ApprovalRecord, bool]:
        """Claim the right to push the request for this tool call: `(record, True)` for the one
        caller that must push it now, `(existing, False)` for everyone else, forever after."""
        now = time.time()
        new_id = uuid.uuid4().hex
        inserted = await self._db.execute(
            "INSERT INTO warrant_approvals (id, user_id, thread_id, tool_call_id, tool_name,"
            " action_digest, binding_message, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                new_id,
                user_id,
                thread_id,
                tool_call_id,
                tool_name,
                action_digest,
                binding_message,
                ApprovalStatus.PENDING.value,
                now,
                now,
            ),
        )
        record = await self.find(user_id, thread_id, tool_call_id)
        if record is None:  # pragma: no cover - the insert or the conflict guarantees a row
            raise LedgerError("the approval could not be recorded")
        if record.action_digest != action_digest:
            raise LedgerError(
                "this tool call was already submitted for approval with different arguments"
            )
        return record, bool(inserted) and record.id == new_id

    async def attach_request(
        self, approval_id: str, *, auth_req_id: str, expires_at: float, interval: float
    ) -> ApprovalRecord:
        """Record what the provider answered to the push."""
        await self._db.execute(
            "UPDATE warrant_approvals SET auth_req_id = ?, expires_at = ?, poll_interval = ?,"
            " next_poll_at = ?, updated_at = ? WHERE id = ? AND auth_req_id IS NULL",
            (auth_req_id, expires_at, interval, time.time() + interval, time.time(), approval_id),
        )
        record = await self._require(approval_id)
        await _audit(record, "requested")
        return record

    async def set_interval(self, approval_id: str, interval: float, next_poll_at: float) -> None:
        """Remember a slowed-down interval (CIBA `slow_down`) and when to ask next."""
        await self._db.execute(
            "UPDATE warrant_approvals SET poll_interval = ?, next_poll_at = ?, updated_at = ?"
            " WHERE id = ?",
            (interval, next_poll_at, time.time(), approval_id),
        )

    async def mark_polled(self, approval_id: str, *, in_flight: bool = True) -> None:
        """Remember that a poll of the token endpoint is in flight (set before it is sent,
        cleared once its "still pending" answer is recorded): found set later, it means a run
        asked and never recorded the answer, so an `invalid_grant` is our own redemption."""
        now = time.time()
        await self._db.execute(
            "UPDATE warrant_approvals SET polled_at = ?, updated_at = ? WHERE id = ?",
            (now if in_flight else None, now, approval_id),
        )

    async def note_outcome(self, approval_id: str, outcome: str, *, status: ApprovalStatus) -> bool:
        """Record what is known so far (an unknown outcome) without moving the record."""
        changed = await self._db.execute(
            "UPDATE warrant_approvals SET outcome = ? WHERE id = ? AND status = ?",
            (outcome, approval_id, status.value),
        )
        return changed == 1

    async def transition(
        self,
        approval_id: str,
        to: ApprovalStatus,
        *,
        expected: ApprovalStatus | None = None,
        outcome: str | None = None,
    ) -> bool:
        """Move a record to `to` if it still is in `expected` (default: any state that may move
        there); True for the one caller whose move happened."""
        sources = (
            [expected]
            if expected is not None
            else [s for s, targets in _ALLOWED_MOVES.items() if to in targets]
        )
        if expected is not None and to not in _ALLOWED_MOVES.get(expected, frozenset()):
            raise LedgerError(f"an approval cannot move from {expected} to {to}")
        marks = ", ".join("?" for _ in sources)
        changed = await self._db.execute(
            "UPDATE warrant_approvals SET status = ?, outcome = COALESCE(?, outcome),"  # noqa: S608
            f" updated_at = ? WHERE id = ? AND status IN ({marks})",
            (to.value, outcome, time.time(), approval_id, *[s.value for s in sources]),
        )
        if changed == 1 and (record := await self.get(approval_id)) is not None:
            await _audit(record, to.value)
        return changed == 1

    async def claim_execution(self, approval_id: str) -> bool:
        """The at-most-once gate: True for exactly one caller, and only after an approval."""
        return await self.transition(
            approval_id, ApprovalStatus.EXECUTING, expected=ApprovalStatus.APPROVED
        )

    async def due_for_poll(
        self, now: float | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        """Pending requests whose next poll time has come (the poller's work list)."""
        rows = await self._db.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM warrant_approvals"  # noqa: S608
            " WHERE status = ? AND auth_req_id IS NOT NULL AND next_poll_at <= ?"
            " ORDER BY next_poll_at LIMIT ?",
            (ApprovalStatus.PENDING.value, now or time.time(), limit),
        )
        return [_record(row) for row in rows]

    async def history(
        self, user_id: str | None = None, limit: int = 100, status: ApprovalStatus | None = None
    ) -> list[ApprovalRecord]:
        """The audit trail, newest first."""
        clauses, params = [], []
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._db.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM warrant_approvals {where}"  # noqa: S608
            " ORDER BY created_at DESC LIMIT ?",
            (*params, limit),
        )
        return [_record(row) for row in rows]

    async def _require(self, approval_id: str) -> ApprovalRecord:
        record = await self.get(approval_id)
        if record is None:
            raise LedgerError(f"no approval {approval_id!r} in the ledger")
        return record


async def _audit(record: ApprovalRecord, moved_to: str) -> None:
    """Every request, answer and execution of an approval is also an audit record."""
    from auth.audit import agent_id, audit_event_for_approval, note

    event = audit_event_for_approval(moved_to)
    if event is not None:
        await note(
            event,
            moved_to,
            sub=record.user_id,
            act=agent_id(),
            tool=record.tool_name,
            args_digest=record.action_digest,
            object=f"thread:{record.thread_id}",
            reason=f"approval {record.id}" + (f": {record.outcome}" if record.outcome else ""),
        )


def _record(row: Sequence[Any]) -> ApprovalRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["status"] = ApprovalStatus(values["status"])
    return ApprovalRecord(**values)


LEDGER_FILE = "approvals.sqlite3"


def ledger_location(settings: Any = None) -> str:
    """Where the ledger lives: `settings.approvals_db` (a SQLite path or a `postgresql://` URL),
    else `approvals.sqlite3` in the data folder."""
    if settings is None:
        from settings import get_settings

        settings = get_settings()
    return settings.approvals_db or str(settings.path(LEDGER_FILE))


def open_ledger(settings: Any = None) -> ApprovalsLedger:
    """The configured ledger (see `ledger_location`); the caller closes it."""
    return ApprovalsLedger(ledger_location(settings))
