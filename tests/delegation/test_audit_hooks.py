"""Each decision point writes its audit record, and no credential ever reaches the trail."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from auth.approvals_ledger import ApprovalsLedger, ApprovalStatus, action_digest
from auth.audit import AuditEvent, AuditLog, audit_location
from auth.errors import LoginRequired
from auth.token_vault import TokenVault

SUBJECT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.user-token-SECRET"
UPSTREAM = "gho_upstreamSECRETtoken1234"


async def _records():
    log = AuditLog(audit_location())
    try:
        return await log.records()
    finally:
        await log.close()


def _no_secret_in_db() -> None:
    from pathlib import Path

    for path in Path(audit_location()).parent.glob("audit.sqlite3*"):
        data = path.read_bytes()
        assert b"SECRET" not in data and b"eyJ" not in data and b"gho_" not in data


async def test_ledger_moves_are_audited_in_order(tmp_path):
    ledger = ApprovalsLedger(tmp_path / "ledger.sqlite3")
    digest = action_digest("create_public_gist", {"filename": "a.md"})
    record, first = await ledger.reserve(
        user_id="auth0|alice",
        thread_id="t1",
        tool_call_id="c1",
        tool_name="create_public_gist",
        action_digest=digest,
        binding_message="Create gist a.md",
    )
    assert first
    await ledger.attach_request(record.id, auth_req_id="r1", expires_at=9e9, interval=1)
    assert await ledger.transition(record.id, ApprovalStatus.APPROVED)
    assert await ledger.claim_execution(record.id)
    assert await ledger.transition(record.id, ApprovalStatus.DONE, outcome="gist g1")
    assert not await ledger.transition(record.id, ApprovalStatus.FAILED)  # no move, no record
    await ledger.close()
    rows = await _records()
    assert [(r.event, r.outcome) for r in rows] == [
        (AuditEvent.APPROVAL_REQUESTED, "requested"),
        (AuditEvent.APPROVAL_ANSWERED, "approved"),
        (AuditEvent.ACTION_EXECUTED, "done"),
    ]
    assert all(r.sub == "auth0|alice" and r.args_digest == digest for r in rows)
    assert all(r.act == "warrant-agent" and r.tool == "create_public_gist" for r in rows)
    assert rows[-1].reason == f"approval {record.id}: gist g1"


def _vault(handler) -> TokenVault:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(
                200, json={"issuer": "https://t/", "token_endpoint": "https://t/oauth/token"}
            )
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    return TokenVault("https://t/", "agent", "agent-secret", http=http)


async def test_token_exchange_is_audited_without_the_tokens():
    vault = _vault(
        lambda r: httpx.Response(
            200,
            json={"access_token": UPSTREAM, "expires_in": 3600, "scope": "gist"},
        )
    )
    await vault.get_token(user_id="auth0|alice", subject_token=SUBJECT, scopes=["gist"])
    refused = _vault(lambda r: httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(LoginRequired):
        await refused.get_token(user_id="auth0|bob", subject_token=SUBJECT, scopes=["gist"])
    rows = await _records()
    assert [(r.event, r.sub, r.outcome) for r in rows] == [
        (AuditEvent.TOKEN_EXCHANGE, "auth0|alice", "allowed"),
        (AuditEvent.TOKEN_EXCHANGE, "auth0|bob", "refused: invalid_grant"),
    ]
    assert rows[0].object == "connection:github" and rows[0].detail == {"scopes": ["gist"]}
    _no_secret_in_db()


def test_cli_login_is_audited(monkeypatch):
    from auth.login import TokenSet
    from cli.main import app

    async def fake_login(on_code):
        return TokenSet(
            access_token=SUBJECT,
            refresh_token="refresh-SECRET",
            expires_at=9e9,
            issuer="https://t/",
            client_id="warrant-cli",
            audience="https://api",
            subject="auth0|alice",
            email="alice@example.com",
        )

    async def refused(on_code):
        raise LoginRequired("the code expired")

    monkeypatch.setattr("cli.login.login_with_device", fake_login)
    assert CliRunner().invoke(app, ["login"]).exit_code == 0
    monkeypatch.setattr("cli.login.login_with_device", refused)
    assert CliRunner().invoke(app, ["login"]).exit_code != 0
    import asyncio

    rows = asyncio.run(_records())
    assert [(r.event, r.sub, r.outcome) for r in rows] == [
        (AuditEvent.LOGIN, "auth0|alice", "allowed"),
        (AuditEvent.LOGIN, None, "refused"),
    ]
    _no_secret_in_db()
