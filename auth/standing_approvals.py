"""Standing approvals: the user approves a bounded class of actions once ("up to N public Gists
from this thread in the next T minutes"), and each action under it is checked and counted.

- Asked for with CIBA like any approval; the request's `authorization_details` (RFC 9396) carry
  the class (`type: warrant_standing_approval`, tool, max_uses, expires_at, thread) so the
  approver sees the limits before saying yes.
- Once approved it is two records: a row in the approvals database (the counter) and a
  conditional FGA tuple `agent:<agent>/<user> grantee standing_approval:<id>` with the
  `standing_limits` condition (expiry and count, OpenFGA's task-based authorization pattern).
- Each use asks FGA (limits, expiry, the tuple still there) and then takes one use with a single
  conditional UPDATE (`used < max_uses AND status = 'active' AND expires_at > now`): concurrent
  uses never exceed N, on SQLite or PostgreSQL. A tool call takes at most one use, ever (a row
  per tool call), so a resume or restart never runs it twice.
- Revoking (`warrant approvals revoke ID`) marks the row and deletes the tuple: the next use fails.
Past the limits the caller falls back to a normal CIBA request for that one action.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from auth.approvals_ledger import ledger_location, ledger_store
from auth.audit import AuditEvent, agent_id, note
from auth.delegation import agent_principal, rfc3339
from auth.fga.client import FGAClient, TupleKey
from auth.sql_store import Schema

log = logging.getLogger(__name__)

DETAILS_TYPE = "warrant_standing_approval"
OBJECT_TYPE = "standing_approval"
GRANTEE = "grantee"
CONDITION = "standing_limits"
MAX_USES = 100
MAX_SECONDS = 24 * 3600


class StandingStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class StandingApprovalError(ValueError):
    """A standing approval that cannot be requested, used or revoked as asked."""


@dataclass(frozen=True)
class StandingApproval:
    """One approved class of actions, with its counter."""

    id: str
    user_id: str  # the provider's `sub`
    fga_user: str  # `user:<email>`: whose agent principal holds the tuple
    agent: str
    tool_name: str
    thread_id: str | None
    max_uses: int
    used: int
    expires_at: float
    status: StandingStatus
    created_at: float

    def remaining(self, now: float | None = None) -> int:
        """Uses left now (0 once expired or revoked)."""
        if self.status is not StandingStatus.ACTIVE or (now or time.time()) >= self.expires_at:
            return 0
        return max(0, self.max_uses - self.used)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = self.status.value
        out["expires"] = rfc3339(self.expires_at)
        return out


def authorization_details(
    tool_name: str, max_uses: int, expires_at: float, thread_id: str | None, agent: str
) -> list[dict[str, Any]]:
    """The RFC 9396 description of the class, as the approver sees it."""
    return [
        {
            "type": DETAILS_TYPE,
            "tool": tool_name,
            "max_uses": max_uses,
            "expires_at": rfc3339(expires_at),
            "thread": thread_id or "any conversation",
            "agent": agent,
        }
    ]


_COLUMNS = tuple(f.name for f in fields(StandingApproval))
_SCHEMA = Schema.portable(
    (
        "CREATE TABLE IF NOT EXISTS warrant_standing_approvals (id TEXT PRIMARY KEY,"
        " user_id TEXT NOT NULL, fga_user TEXT NOT NULL, agent TEXT NOT NULL,"
        " tool_name TEXT NOT NULL, thread_id TEXT, max_uses INTEGER NOT NULL,"
        " used INTEGER NOT NULL DEFAULT 0, expires_at DOUBLE PRECISION NOT NULL,"
        " status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
        " CHECK (used >= 0 AND used <= max_uses))",
        "CREATE TABLE IF NOT EXISTS warrant_standing_uses (user_id TEXT NOT NULL,"
        " thread_id TEXT NOT NULL, tool_call_id TEXT NOT NULL, standing_id TEXT,"
        " action_digest TEXT NOT NULL, status TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,"
        " PRIMARY KEY (user_id, thread_id, tool_call_id))",
    )
)


def _row(values: Sequence[Any]) -> StandingApproval:
    data = dict(zip(_COLUMNS, values, strict=True))
    data["status"] = StandingStatus(data["status"])
    return StandingApproval(**data)


@dataclass(frozen=True)
class Use:
    """What happened to one tool call under the standing approvals."""

    status: str  # "claimed" (run it now), "done"/"executing" (ran before: never again),
    #             "none" (no standing approval covers it: ask with CIBA)
    standing: StandingApproval | None = None


class StandingApprovals:
    """The counter rows (in the approvals database) and the FGA tuples, kept together."""

    def __init__(
        self, location: str, fga: FGAClient | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = ledger_store(location)
        self._fga_client = fga
        self._owns_fga = fga is None
        self._clock = clock

    async def _schema(self) -> None:
        await self._db.ensure(_SCHEMA)

    async def fga(self) -> FGAClient:
        """The FGA client given, or the configured one (opened on first need)."""
        if self._fga_client is None:
            from auth.fga.factory import make_fga_client

            self._fga_client = await asyncio.to_thread(make_fga_client)
        return self._fga_client

    async def close(self) -> None:
        await self._db.close()
        if self._owns_fga and self._fga_client is not None:
            await self._fga_client.close()

    async def get(self, standing_id: str) -> StandingApproval | None:
        await self._schema()
        rows = await self._db.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM warrant_standing_approvals WHERE id = ?",  # noqa: S608
            (standing_id,),
        )
        return _row(rows[0]) if rows else None

    async def list(self, user_id: str | None = None) -> list[StandingApproval]:
        await self._schema()
        where, params = ("WHERE user_id = ?", (user_id,)) if user_id else ("", ())
        rows = await self._db.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM warrant_standing_approvals {where}"  # noqa: S608
            " ORDER BY created_at",
            params,
        )
        return [_row(r) for r in rows]

    async def record_approved(
        self,
        *,
        user_id: str,
        fga_user: str,
        tool_name: str,
        max_uses: int,
        expires_at: float,
        thread_id: str | None,
        reason: str,
    ) -> StandingApproval:
        """Store an approved class: the FGA tuple first (no tuple: no use), then the row."""
        _validate(max_uses, expires_at, self._clock())
        await self._schema()
        agent = agent_id()
        standing = StandingApproval(
            id=uuid.uuid4().hex,
            user_id=user_id,
            fga_user=fga_user,
            agent=agent,
            tool_name=tool_name,
            thread_id=thread_id,
            max_uses=max_uses,
            used=0,
            expires_at=expires_at,
            status=StandingStatus.ACTIVE,
            created_at=self._clock(),
        )
        await (await self.fga()).write(
            [
                TupleKey(
                    agent_principal(agent, fga_user),
                    GRANTEE,
                    f"{OBJECT_TYPE}:{standing.id}",
                    CONDITION,
                    {"expires_at": rfc3339(expires_at), "max_uses": max_uses},
                )
            ]
        )
        marks = ", ".join("?" for _ in _COLUMNS)
        await self._db.execute(
            f"INSERT INTO warrant_standing_approvals ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            tuple(standing.as_dict()[c] for c in _COLUMNS),
        )
        await note(
            AuditEvent.STANDING_APPROVAL_GRANTED,
            "approved",
            sub=user_id,
            act=agent,
            tool=tool_name,
            object=f"{OBJECT_TYPE}:{standing.id}",
            reason=reason,
            detail={
                "max_uses": max_uses,
                "expires_at": rfc3339(expires_at),
                "thread": thread_id,
            },
        )
        return standing

    async def revoke(self, standing_id: str, user_id: str) -> StandingApproval:
        """Stop it now: the row says revoked and the tuple is gone (either alone suffices)."""
        found = await self.get(standing_id)
        if found is None or found.user_id != user_id:
            raise StandingApprovalError(f"no standing approval {standing_id!r} of yours")
        await self._db.execute(
            "UPDATE warrant_standing_approvals SET status = ? WHERE id = ?",
            (StandingStatus.REVOKED.value, standing_id),
        )
        key = TupleKey(
            agent_principal(found.agent, found.fga_user), GRANTEE, f"{OBJECT_TYPE}:{standing_id}"
        )
        fga = await self.fga()
        if await fga.read(key.user, key.relation, key.object):
            await fga.write(deletes=[key])
        await note(
            AuditEvent.STANDING_APPROVAL_REVOKED,
            "revoked",
            sub=user_id,
            act=found.agent,
            tool=found.tool_name,
            object=key.object,
            reason="by the user",
            detail={"used": found.used, "max_uses": found.max_uses},
        )
        return (await self.get(standing_id)) or found

    async def _allowed_by_fga(self, standing: StandingApproval, now: float) -> bool:
        try:
            return bool(
                await (await self.fga()).check(
                    agent_principal(standing.agent, standing.fga_user),
                    GRANTEE,
                    f"{OBJECT_TYPE}:{standing.id}",
                    context={"current_time": rfc3339(now), "used": standing.used},
                )
            )
        except Exception as exc:  # fail closed: no FGA answer, no standing use
            log.warning("standing approval %s: FGA check failed: %s", standing.id, exc)
            return False

    async def use(
        self,
        *,
        user_id: str,
        fga_user: str,
        thread_id: str,
        tool_call_id: str,
        tool_name: str,
        action_digest: str,
    ) -> Use:
        """Take one use for this tool call, or say why not. Never takes two for one call."""
        await self._schema()
        call = (user_id, thread_id, tool_call_id)
        earlier = await self._db.fetch(
            "SELECT status, standing_id FROM warrant_standing_uses"
            " WHERE user_id = ? AND thread_id = ? AND tool_call_id = ?",
            call,
        )
        if earlier:
            status, standing_id = earlier[0]
            return Use(status, await self.get(standing_id) if standing_id else None)
        now = self._clock()
        agent = agent_id()
        candidates = [
            s
            for s in await self.list(user_id)
            if s.tool_name == tool_name
            and s.agent == agent
            and s.fga_user == fga_user
            and s.thread_id in (None, thread_id)
            and s.remaining(now) > 0
        ]
        for standing in candidates:
            if not await self._allowed_by_fga(standing, now):
                continue
            taken = await self._db.execute(
                "UPDATE warrant_standing_approvals SET used = used + 1 WHERE id = ?"
                " AND status = ? AND used < max_uses AND expires_at > ?",
                (standing.id, StandingStatus.ACTIVE.value, now),
            )
            if taken != 1:
                continue  # raced to the limit (or revoked) just now: try the next one
            inserted = await self._db.execute(
                "INSERT INTO warrant_standing_uses (user_id, thread_id, tool_call_id,"
                " standing_id, action_digest, status, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (*call, standing.id, action_digest, "executing", now),
            )
            if inserted != 1:
                # A concurrent run of this same tool call won: give the use back, run nothing.
                await self._db.execute(
                    "UPDATE warrant_standing_approvals SET used = used - 1 WHERE id = ?",
                    (standing.id,),
                )
                return Use("executing", standing)
            current = await self.get(standing.id)
            await note(
                AuditEvent.STANDING_APPROVAL_USED,
                "claimed",
                sub=user_id,
                act=agent,
                tool=tool_name,
                args_digest=action_digest,
                object=f"{OBJECT_TYPE}:{standing.id}",
                reason=f"standing approval {standing.id}",
                detail={"used": current.used if current else None, "max_uses": standing.max_uses},
            )
            return Use("claimed", current)
        return Use("none")

    async def finish(self, *, user_id: str, thread_id: str, tool_call_id: str, ok: bool) -> None:
        """Record how the claimed action ended (the use is spent either way)."""
        await self._db.execute(
            "UPDATE warrant_standing_uses SET status = ? WHERE user_id = ? AND thread_id = ?"
            " AND tool_call_id = ? AND status = 'executing'",
            ("done" if ok else "failed", user_id, thread_id, tool_call_id),
        )


def _validate(max_uses: int, expires_at: float, now: float) -> None:
    if isinstance(max_uses, bool) or not isinstance(max_uses, int) or not 1 <= max_uses <= MAX_USES:
        raise StandingApprovalError(f"max uses must be between 1 and {MAX_USES}")
    if expires_at <= now:
        raise StandingApprovalError("the expiry is in the past")
    if expires_at - now > MAX_SECONDS:
        raise StandingApprovalError("a standing approval lasts at most 24 hours")


async def request_standing_approval(
    ciba: Any,
    store: StandingApprovals,
    *,
    user_id: str,
    fga_user: str,
    tool_name: str,
    max_uses: int,
    seconds: float,
    thread_id: str | None = None,
    scopes: Sequence[str] = (),
    audience: str | None = None,
    requested_expiry: int = 300,
    on_pushed: Callable[[str], Any] | None = None,
) -> StandingApproval:
    """Ask the user (CIBA, limits in `authorization_details`), wait for the answer, record it.

    Raises the CIBA client's `ApprovalDenied` / `ApprovalExpired` / `ApprovalUnverified`.
    """
    from auth.ciba import ApprovalPending, binding_message

    now = store._clock()
    expires_at = now + seconds
    _validate(max_uses, expires_at, now)
    agent = agent_id()
    minutes = max(1, round(seconds / 60))
    text = f"Up to {max_uses} {tool_name} in {minutes} min" + (" (this chat)" if thread_id else "")
    request = await ciba.start(
        user_id,
        binding_message(text),
        list(scopes),
        audience=audience,
        requested_expiry=requested_expiry,
        authorization_details=authorization_details(
            tool_name, max_uses, expires_at, thread_id, agent
        ),
    )
    await note(
        AuditEvent.APPROVAL_REQUESTED,
        "requested",
        sub=user_id,
        act=agent,
        tool=tool_name,
        reason="standing approval",
        detail={"max_uses": max_uses, "expires_at": rfc3339(expires_at), "thread": thread_id},
    )
    if on_pushed is not None:
        on_pushed(request.binding_message)
    while True:
        await asyncio.sleep(max(0.0, request.not_before - store._clock()))
        try:
            await ciba.poll(request)
            break
        except ApprovalPending:
            continue
        except Exception as exc:
            await note(
                AuditEvent.APPROVAL_ANSWERED,
                type(exc).__name__,
                sub=user_id,
                act=agent,
                tool=tool_name,
                reason="standing approval",
            )
            raise
    # Exactly the limits the approver saw in the request (`expires_at` included).
    return await store.record_approved(
        user_id=user_id,
        fga_user=fga_user,
        tool_name=tool_name,
        max_uses=max_uses,
        expires_at=expires_at,
        thread_id=thread_id,
        reason=f"approved on the authenticator ({request.binding_message})",
    )


def open_standing_approvals(
    fga: FGAClient | None = None, settings: Any = None
) -> StandingApprovals:
    """The configured store (next to the approvals ledger)."""
    return StandingApprovals(ledger_location(settings), fga)
