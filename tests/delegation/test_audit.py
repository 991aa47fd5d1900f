"""The audit trail: append-only, hash-chained, token-free; edits behind Warrant's back are found."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from typer.testing import CliRunner

from auth.audit import AuditEvent, AuditLog, SecretInRecord, VerifyResult, verify_chain
from cli.main import app
from settings import get_settings

runner = CliRunner()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "audit.sqlite3"


async def _fill(db, n: int = 4) -> AuditLog:
    log = AuditLog(db)
    for i in range(n):
        await log.record(
            AuditEvent.ACTION_EXECUTED,
            "allowed",
            sub="auth0|alice",
            act="warrant-agent",
            tool="create_public_gist",
            args_digest=f"{i:064x}",
            reason="approval a1",
            detail={"i": i},
        )
    return log


def _tamper(db, *statements: str) -> None:
    """What someone with the file could do: drop the guards and rewrite rows directly."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER warrant_audit_no_update")
    conn.execute("DROP TRIGGER warrant_audit_no_delete")
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


async def _verify_tampered(db, *statements: str) -> VerifyResult:
    """Fill a log, tamper with it as `_tamper` does, and verify it afresh."""
    await (await _fill(db)).close()
    _tamper(db, *statements)
    log = AuditLog(db)
    try:
        return await log.verify()
    finally:
        await log.close()


async def test_chain_verifies_and_records_read_back_in_order(db):
    log = await _fill(db)
    result = await log.verify()
    assert result.ok and result.records == 4
    records = await log.records()
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[1].prev_hash == records[0].hash
    assert records[0].act == "warrant-agent" and records[0].sub == "auth0|alice"
    assert (await log.records(limit=2))[0].seq == 3
    await log.close()


async def test_database_refuses_update_and_delete(db):
    log = await _fill(db, 1)
    await log.close()
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE warrant_audit SET outcome = 'refused'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM warrant_audit")
    conn.close()


async def test_a_changed_record_is_detected(db):
    result = await _verify_tampered(
        db, "UPDATE warrant_audit SET outcome = 'refused' WHERE seq = 2"
    )
    assert not result.ok and result.bad_seq == 2 and "changed" in result.problem


async def test_a_changed_record_with_a_recomputed_hash_breaks_the_next_link(db):
    await (await _fill(db)).close()
    log = AuditLog(db)
    second = (await log.records())[1]
    from dataclasses import replace

    from auth.audit import chain_hash

    forged = replace(second, outcome="refused", hash="")
    forged = replace(forged, hash=chain_hash(forged))
    await log.close()
    _tamper(
        db,
        f"UPDATE warrant_audit SET outcome='refused', hash='{forged.hash}' WHERE seq = 2",
    )
    log = AuditLog(db)
    result = await log.verify()
    assert not result.ok and result.bad_seq == 3
    await log.close()


async def test_a_removed_record_is_detected(db):
    result = await _verify_tampered(db, "DELETE FROM warrant_audit WHERE seq = 2")
    assert not result.ok and "missing" in result.problem


async def test_removed_and_renumbered_records_are_detected(db):
    result = await _verify_tampered(
        db,
        "DELETE FROM warrant_audit WHERE seq = 2",
        "UPDATE warrant_audit SET seq = seq - 1 WHERE seq > 2",
    )
    assert not result.ok and result.bad_seq == 2


async def test_reordered_records_are_detected(db):
    result = await _verify_tampered(
        db,
        "UPDATE warrant_audit SET seq = 100 WHERE seq = 2",
        "UPDATE warrant_audit SET seq = 2 WHERE seq = 3",
        "UPDATE warrant_audit SET seq = 3 WHERE seq = 100",
    )
    assert not result.ok and result.bad_seq == 2


async def test_cut_off_tail_is_caught_by_an_anchored_head(db):
    log = await _fill(db)
    _, head = await log.head()
    await log.close()
    _tamper(db, "DELETE FROM warrant_audit WHERE seq = 4")
    log = AuditLog(db)
    assert (await log.verify()).ok  # a shorter chain is still a chain ...
    result = await log.verify(expect_head=head)  # ... but not the one anchored earlier
    assert not result.ok and "expected head" in result.problem
    await log.close()


async def test_unreadable_row_is_reported_not_raised(db):
    result = await _verify_tampered(db, "UPDATE warrant_audit SET event = 'nonsense' WHERE seq = 3")
    assert not result.ok and result.bad_seq == 3


@pytest.mark.parametrize(
    "field,value",
    [
        ("reason", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"),
        ("object", "Bearer abcdefghijklmnop"),
        ("detail", {"token": "gho_abcdefghijklmnop1234"}),
        ("detail", {"nested": ["x", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"]}),
    ],
)
async def test_no_token_is_ever_recorded(db, field, value):
    log = AuditLog(db)
    with pytest.raises(SecretInRecord):
        await log.record(AuditEvent.LOGIN, "allowed", sub="auth0|alice", **{field: value})
    assert await log.records() == []
    await log.close()
    assert b"eyJ" not in db.read_bytes() and b"gho_" not in db.read_bytes()


async def test_concurrent_appends_from_two_logs_never_fork_the_chain(db):
    first, second = AuditLog(db), AuditLog(db)

    async def write(log: AuditLog, n: int) -> None:
        for i in range(n):
            await log.record(AuditEvent.FGA_CHECK, "allowed", sub=f"u{i}")

    await asyncio.gather(write(first, 20), write(second, 20))
    result = await first.verify()
    assert result.ok and result.records == 40
    await first.close()
    await second.close()


def test_verify_chain_on_empty_input_is_ok():
    assert verify_chain([]).ok


def test_cli_prints_json_and_verify_fails_after_tampering(tmp_path):
    with get_settings.override(data_dir=tmp_path, audit_db=None):
        db = tmp_path / "audit.sqlite3"
        asyncio.run(_fill_and_close(db))
        shown = runner.invoke(app, ["audit", "--json"])
        assert shown.exit_code == 0, shown.output
        rows = [json.loads(line) for line in shown.output.splitlines()]
        assert [r["seq"] for r in rows] == [1, 2, 3, 4] and rows[0]["event"] == "action_executed"
        table = runner.invoke(app, ["audit"])
        assert table.exit_code == 0, table.output
        assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
        _tamper(db, "UPDATE warrant_audit SET sub = 'auth0|mallory' WHERE seq = 1")
        bad = runner.invoke(app, ["audit", "verify"])
        assert bad.exit_code == 1 and "record 1 was changed" in bad.output
        assert runner.invoke(app, ["audit", "--event", "bogus"]).exit_code == 2


async def _fill_and_close(db) -> None:
    await (await _fill(db)).close()


async def test_hooks_redact_instead_of_losing_the_decision(tmp_path):
    from auth.audit import REDACTED, note

    with get_settings.override(data_dir=tmp_path, audit_db=None):
        jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
        kept = await note(
            AuditEvent.ACTION_EXECUTED,
            "done",
            sub="auth0|alice",
            reason=f"approval a1: tool said Bearer {jwt}",
            detail={"echo": ["gho_abcdefghijklmnop1234"]},
        )
        assert kept is not None and REDACTED in kept.reason
        assert kept.detail == {"echo": [REDACTED]}
        log = AuditLog(tmp_path / "audit.sqlite3")
        assert (await log.verify()).ok
        await log.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("audit.sqlite3*"))
    assert b"eyJ" not in data and b"gho_" not in data


def test_no_command_edits_the_trail():
    from cli.audit import audit_app

    assert {c.name for c in audit_app.registered_commands} == {"verify"}
