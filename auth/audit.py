"""The audit trail: one append-only, hash-chained record per authorization decision.

Each record says who (the user's `sub`), which agent (`act`), what (tool, a digest of the
arguments, the object), why (the rule or approval that allowed or refused it), the outcome and
when. Records are chained: `hash = sha256(prev_hash || canonical(record))`, so a record that is
changed, removed from the middle or moved breaks the chain and `verify()` names the first bad
sequence number. Cutting records off the end leaves a valid shorter chain; `head()` gives the
sequence number and hash to anchor somewhere else (a ticket, a log shipper) to catch that too.

No Warrant command updates or deletes a record; on SQLite, triggers refuse UPDATE and DELETE
(someone with the file can drop them: the chain is what detects that). No token is ever stored:
every text is scanned and anything shaped like a JWT or a bearer credential is refused.

SQLite by default (`audit.sqlite3` in the data folder); PostgreSQL for a `postgresql://` URL
(`WARRANT_AUDIT_DB`), as the approvals ledger does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from auth.sql_store import PostgresStore, Schema, SQLiteStore, is_postgres

log = logging.getLogger(__name__)

GENESIS = "0" * 64
AUDIT_FILE = "audit.sqlite3"


class AuditEvent(StrEnum):
    """The decision points that write a record."""

    LOGIN = "login"
    TOKEN_EXCHANGE = "token_exchange"
    FGA_CHECK = "fga_check"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_ANSWERED = "approval_answered"
    ACTION_EXECUTED = "action_executed"
    ACTION_REFUSED = "action_refused"
    DELEGATION_GRANTED = "delegation_granted"
    DELEGATION_REVOKED = "delegation_revoked"
    STANDING_APPROVAL_GRANTED = "standing_approval_granted"
    STANDING_APPROVAL_USED = "standing_approval_used"
    STANDING_APPROVAL_REVOKED = "standing_approval_revoked"


class AuditError(Exception):
    """The audit trail could not be written or read."""


class SecretInRecord(AuditError):
    """A value about to be recorded looks like a credential; it is refused, never stored."""


@dataclass(frozen=True)
class AuditRecord:
    """One decision. `seq` and the hashes are set by the store when the record is appended."""

    event: AuditEvent
    outcome: str
    sub: str | None = None
    act: str | None = None
    tool: str | None = None
    args_digest: str | None = None
    object: str | None = None
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: float = 0.0
    seq: int = 0
    prev_hash: str = GENESIS
    hash: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe view (the CLI's `--json`)."""
        out = asdict(self)
        out["event"] = self.event.value
        out["detail"] = dict(self.detail)
        return out


@dataclass(frozen=True)
class VerifyResult:
    """What `verify()` found: ok, how many records, and the first problem if any."""

    ok: bool
    records: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None


# A JWT (three base64url parts, the first a JSON header), a bearer header, or GitHub/OAuth-style
# long opaque credentials. Digests (hex) and ids are fine; anything shaped like these is not.
_SECRET_SHAPES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{8,}"),
    re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{8,}"),
)


def _assert_no_secret(value: Any, where: str) -> None:
    if isinstance(value, str):
        for shape in _SECRET_SHAPES:
            if shape.search(value):
                raise SecretInRecord(f"refused to record a credential-shaped value in {where}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _assert_no_secret(str(key), where)
            _assert_no_secret(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _assert_no_secret(item, where)


REDACTED = "[redacted credential]"


def redact(value: Any) -> Any:
    """`value` with every credential-shaped substring replaced (texts, dict values, lists)."""
    if isinstance(value, str):
        for shape in _SECRET_SHAPES:
            value = shape.sub(REDACTED, value)
        return value
    if isinstance(value, Mapping):
        return {redact(str(k)): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def canonical(record: AuditRecord) -> bytes:
    """The bytes a record's hash covers: every field but the hash itself, canonically encoded."""
    body = record.as_dict()
    body.pop("hash")
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_hash(record: AuditRecord) -> str:
    """sha256 over the previous hash and this record's canonical bytes."""
    return hashlib.sha256(record.prev_hash.encode() + b"\n" + canonical(record)).hexdigest()


_COLUMNS = (
    "seq",
    "at",
    "event",
    "outcome",
    "sub",
    "act",
    "tool",
    "args_digest",
    "object",
    "reason",
    "detail",
    "prev_hash",
    "hash",
)

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS warrant_audit (
    seq INTEGER PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    sub TEXT, act TEXT, tool TEXT, args_digest TEXT, object TEXT, reason TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS warrant_audit_sub ON warrant_audit (sub, seq);
CREATE TRIGGER IF NOT EXISTS warrant_audit_no_update BEFORE UPDATE ON warrant_audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS warrant_audit_no_delete BEFORE DELETE ON warrant_audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""

_POSTGRES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS warrant_audit (seq BIGINT PRIMARY KEY,"
    " at DOUBLE PRECISION NOT NULL, event TEXT NOT NULL, outcome TEXT NOT NULL, sub TEXT,"
    " act TEXT, tool TEXT, args_digest TEXT, object TEXT, reason TEXT, detail TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL UNIQUE)",
    "CREATE INDEX IF NOT EXISTS warrant_audit_sub ON warrant_audit (sub, seq)",
    "CREATE OR REPLACE FUNCTION warrant_audit_append_only() RETURNS trigger AS $$"
    " BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS warrant_audit_append_only ON warrant_audit",
    "CREATE TRIGGER warrant_audit_append_only BEFORE UPDATE OR DELETE ON warrant_audit"
    " FOR EACH ROW EXECUTE FUNCTION warrant_audit_append_only()",
)

_INSERT = f"INSERT INTO warrant_audit ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 13)})"  # noqa: S608


def _row(record: AuditRecord) -> tuple[Any, ...]:
    values = record.as_dict()
    values["detail"] = json.dumps(values["detail"], sort_keys=True, default=str)
    return tuple(values[c] for c in _COLUMNS)


def _from_row(row: Sequence[Any]) -> AuditRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["event"] = AuditEvent(values["event"])
    values["detail"] = json.loads(values["detail"] or "{}")
    return AuditRecord(**values)


def _next(last: tuple[int, str] | None, record: AuditRecord) -> AuditRecord:
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    draft = AuditRecord(
        **{**asdict(record), "seq": seq, "prev_hash": prev, "hash": "", "at": record.at}
    )
    return AuditRecord(**{**asdict(draft), "hash": chain_hash(draft)})


_SCHEMA = Schema(
    sqlite=_SQLITE_SCHEMA,
    postgres=_POSTGRES_SCHEMA,
    # DDL only once: it locks the table
    postgres_present="SELECT 1 FROM pg_trigger WHERE tgname = 'warrant_audit_append_only'"
    " AND tgrelid = to_regclass('warrant_audit')",
)
_SCHEMA_LOCK = 7315001  # held (shared) by every append, exclusively while the schema is set up
_APPEND_LOCK = 7315002  # one appender at a time across every process sharing the database


class _SQLiteAudit(SQLiteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, busy_timeout_ms=10000)

    def _append_sync(self, record: AuditRecord) -> AuditRecord:
        # BEGIN IMMEDIATE takes the write lock before reading the head: two processes appending
        # at once are serialised by SQLite, so the chain never forks.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            last = self._conn.execute(
                "SELECT seq, hash FROM warrant_audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            done = _next(last, record)
            self._conn.execute(_INSERT, _row(done))
            self._conn.execute("COMMIT")
            return done
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    async def append(self, record: AuditRecord) -> AuditRecord:
        async with self._lock:
            return await asyncio.to_thread(self._append_sync, record)


class _PostgresAudit(PostgresStore):
    def __init__(self, url: str) -> None:
        super().__init__(url, _SCHEMA, schema_lock=_SCHEMA_LOCK)

    async def append(self, record: AuditRecord) -> AuditRecord:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            # Never while another process creates the schema; one appender at a time across
            # every process sharing the database.
            await conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (_SCHEMA_LOCK,))
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
            cur = await conn.execute(
                "SELECT seq, hash FROM warrant_audit ORDER BY seq DESC LIMIT 1"
            )
            last = await cur.fetchone()
            done = _next(tuple(last) if last else None, record)
            await conn.execute(self._sql(_INSERT), _row(done))
            return done


class AuditLog:
    """Append records, read them back, verify the chain."""

    def __init__(self, location: str | Path) -> None:
        text = str(location)
        self.location = text
        self._db: _SQLiteAudit | _PostgresAudit = (
            _PostgresAudit(text) if is_postgres(text) else _SQLiteAudit(Path(text))
        )

    async def close(self) -> None:
        """Release the connection (or pool)."""
        await self._db.close()

    async def record(
        self,
        event: AuditEvent,
        outcome: str,
        *,
        sub: str | None = None,
        act: str | None = None,
        tool: str | None = None,
        args_digest: str | None = None,
        object: str | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
        redact_secrets: bool = False,
    ) -> AuditRecord:
        """Append one record. A credential-shaped value raises `SecretInRecord` (nothing
        written), or with `redact_secrets` is replaced by a marker (the decision is still kept)."""
        fields = {
            "outcome": outcome,
            "sub": sub,
            "act": act,
            "tool": tool,
            "args_digest": args_digest,
            "object": object,
            "reason": reason,
            "detail": dict(detail or {}),
        }
        if redact_secrets:
            fields = {k: redact(v) for k, v in fields.items()}
        draft = AuditRecord(event=AuditEvent(event), at=time.time(), **fields)
        for name, value in draft.as_dict().items():
            _assert_no_secret(value, name)
        try:
            return await self._db.append(draft)
        except SecretInRecord:
            raise
        except Exception as exc:
            raise AuditError(
                f"the audit record could not be written ({type(exc).__name__})"
            ) from exc

    async def records(
        self,
        *,
        sub: str | None = None,
        event: AuditEvent | None = None,
        since_seq: int = 0,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records in chain order (oldest first), optionally for one user or one event."""
        clauses, params = ["seq > ?"], [since_seq]
        if sub is not None:
            clauses.append("sub = ?")
            params.append(sub)
        if event is not None:
            clauses.append("event = ?")
            params.append(AuditEvent(event).value)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM warrant_audit WHERE {' AND '.join(clauses)}"  # noqa: S608
        sql += " ORDER BY seq"
        if limit is not None:
            rows = await self._db.fetch(sql + " DESC LIMIT ?", (*params, limit))
            return [_from_row(r) for r in reversed(rows)]
        return [_from_row(r) for r in await self._db.fetch(sql, params)]

    async def head(self) -> tuple[int, str]:
        """The last sequence number and hash (0 and the genesis hash when empty)."""
        rows = await self._db.fetch("SELECT seq, hash FROM warrant_audit ORDER BY seq DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    async def verify(self, *, expect_head: str | None = None) -> VerifyResult:
        """Walk the chain from the first record; the first break is reported."""
        rows = await self._db.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM warrant_audit ORDER BY seq"  # noqa: S608
        )
        return verify_chain(_safe_records(rows), expect_head=expect_head)


def _safe_records(rows: Iterable[Sequence[Any]]) -> list[AuditRecord | str]:
    out: list[AuditRecord | str] = []
    for row in rows:
        try:
            out.append(_from_row(row))
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            out.append(f"record {row[0]} cannot be read ({type(exc).__name__})")
    return out


def verify_chain(
    records: Sequence[AuditRecord | str], *, expect_head: str | None = None
) -> VerifyResult:
    """Check sequence numbers, links and hashes of records given oldest first."""
    prev, expected_seq = GENESIS, 1
    for item in records:
        if isinstance(item, str):
            return VerifyResult(False, len(records), prev, item, expected_seq)
        if item.seq != expected_seq:
            return VerifyResult(
                False,
                len(records),
                prev,
                f"record {expected_seq} is missing (the next one is {item.seq})",
                expected_seq,
            )
        if item.prev_hash != prev:
            return VerifyResult(
                False,
                len(records),
                prev,
                f"record {item.seq} does not follow record {item.seq - 1} (removed or reordered)",
                item.seq,
            )
        if chain_hash(item) != item.hash:
            return VerifyResult(
                False, len(records), prev, f"record {item.seq} was changed", item.seq
            )
        prev, expected_seq = item.hash, expected_seq + 1
    if expect_head is not None and expect_head != prev:
        return VerifyResult(
            False,
            len(records),
            prev,
            "the chain does not end at the expected head (records cut off or replaced)",
            None,
        )
    return VerifyResult(True, len(records), prev)


def audit_location(settings: Any = None) -> str:
    """`settings.audit_db` (a SQLite path or a `postgresql://` URL), else the data folder."""
    if settings is None:
        from settings import get_settings

        settings = get_settings()
    return getattr(settings, "audit_db", None) or str(settings.path(AUDIT_FILE))


_logs: dict[tuple[int, str], AuditLog] = {}


async def audit_log(settings: Any = None) -> AuditLog:
    """This event loop's audit log for the configured location (its lock and pool belong to
    one loop; the chain itself is shared through the database). Opened on a worker thread:
    creating the folder and opening SQLite block, which `langgraph dev` refuses on its loop."""
    if settings is None:
        from settings import get_settings

        settings = get_settings()
    key = (id(asyncio.get_running_loop()), settings.audit_db or str(settings.data_dir))
    found = _logs.get(key)
    if found is None:
        found = await asyncio.to_thread(lambda: AuditLog(audit_location(settings)))
        found = _logs.setdefault(key, found)
    return found


async def note(event: AuditEvent, outcome: str, **fields: Any) -> AuditRecord | None:
    """Record a decision from a hook inside another flow; credential-shaped text is redacted.

    A failure to write is logged at ERROR and does not change that flow's answer: the trail is
    evidence, not a gate (an unreachable audit database does not stop approved work)."""
    try:
        return await (await audit_log()).record(event, outcome, redact_secrets=True, **fields)
    except SecretInRecord:
        log.error("audit: a %s record carried a credential-shaped value and was refused", event)
    except Exception as exc:
        log.error("audit: could not record %s (%s)", event, type(exc).__name__)
    return None


def note_sync(event: AuditEvent, outcome: str, **fields: Any) -> AuditRecord | None:
    """`note` for synchronous callers outside any event loop (the CLI)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_note_and_close(event, outcome, fields))
    raise RuntimeError("note_sync called inside an event loop: await note(...) instead")


async def _note_and_close(event: AuditEvent, outcome: str, fields: dict[str, Any]) -> Any:
    where = audit_location()
    log_ = AuditLog(where)
    try:
        return await log_.record(event, outcome, **fields)
    except Exception as exc:
        log.error("audit: could not record %s (%s)", event, type(exc).__name__)
        return None
    finally:
        await log_.close()


def agent_id(settings: Any = None) -> str:
    """The agent's own name in records and FGA (`act.sub`): its OAuth client id."""
    if settings is None:
        from settings import get_settings

        settings = get_settings()
    return str(settings.agent_client_id)


async def note_action(
    tool: str, arguments: Any, sub: str | None, *, ran: bool, reason: str | None = None
) -> AuditRecord | None:
    """Record one tool call the agent ran (or that was refused) for `sub`; arguments as a digest."""
    from auth.approvals_ledger import action_digest

    args = arguments if isinstance(arguments, dict) else {"value": arguments}
    return await note(
        AuditEvent.ACTION_EXECUTED if ran else AuditEvent.ACTION_REFUSED,
        "executed" if ran else "refused",
        sub=sub,
        act=agent_id(),
        tool=tool,
        args_digest=action_digest(tool, args),
        reason=reason,
    )


_APPROVAL_EVENTS = {
    "requested": AuditEvent.APPROVAL_REQUESTED,
    "approved": AuditEvent.APPROVAL_ANSWERED,
    "denied": AuditEvent.APPROVAL_ANSWERED,
    "expired": AuditEvent.APPROVAL_ANSWERED,
    "done": AuditEvent.ACTION_EXECUTED,
    "failed": AuditEvent.ACTION_REFUSED,
}


def audit_event_for_approval(status: str) -> AuditEvent | None:
    """The audit event a ledger move stands for (`executing` is only the claim: no record)."""
    return _APPROVAL_EVENTS.get(status)


async def note_withheld(
    principal: str, what: str, withheld: int, revoked: Iterable[str]
) -> AuditRecord | None:
    """An FGA answer changed what the agent did: `withheld` objects it found were not shown
    (the user or the agent's delegation lacked the relation). Nothing to record otherwise."""
    revoked = sorted(revoked)
    if withheld <= 0 and not revoked:
        return None
    from tools.identity import current_acting_identity

    identity = current_acting_identity()
    return await note(
        AuditEvent.FGA_CHECK,
        "withheld",
        sub=identity.sub if identity is not None else principal,
        act=agent_id(),
        tool=what,
        object=principal,
        reason="FGA denied the user or the agent's delegation",
        detail={"withheld": withheld, "revoked_during_search": revoked},
    )
