"""`warrant approvals list|approve|deny|log` through typer's CliRunner, against a real devstack
on loopback, with the user's login stored where `warrant login` keeps it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from auth.approvals_ledger import ApprovalsLedger, ApprovalStatus
from auth.ciba import CIBAClient
from auth.errors import ApprovalDenied
from auth.login import TokenFile, TokenSet
from cli.main import app
from devstack.identity.autologin import login
from devstack.identity.users import subject_for
from settings import get_settings

from .conftest import run

ALICE = subject_for("alice@example.com")
BOB = subject_for("bob@example.com")
runner = CliRunner()


@pytest.fixture
def cli_env(ciba_stack, tmp_path) -> Iterator:
    with get_settings.override(
        **ciba_stack.overrides,
        data_dir=tmp_path,
        approvals_db=str(tmp_path / "ledger.sqlite3"),
    ) as settings:
        yield settings


def _save_login(stack, user: str = "alice", issuer: str | None = None) -> None:
    s = stack.settings
    email = f"{user}@example.com"
    got = run(
        login(
            stack.issuer,
            email,
            getattr(s, f"{user}_password").get_secret_value(),
            client_id=s.cli_client_id,
            audience=s.audience,
        )
    )
    TokenFile().save(
        TokenSet(
            access_token=got.access_token,
            expires_at=got.expires_at,
            issuer=issuer or stack.issuer,
            client_id=s.cli_client_id,
            audience=s.audience,
            subject=subject_for(email),
            email=email,
            scope=got.scope,
            refresh_token=got.refresh_token,
            id_token=got.id_token,
        )
    )


def _agent(stack) -> CIBAClient:
    s = stack.settings
    return CIBAClient(stack.issuer, s.agent_client_id, s.agent_client_secret.get_secret_value())


def _start(stack, user: str = ALICE, message: str = "Create gist notes.md"):
    async def go():
        client = _agent(stack)
        try:
            return await client.start(user, message, ["create:gist"])
        finally:
            await client.aclose()

    return run(go())


def _poll(stack, request):
    async def go():
        client = _agent(stack)
        try:
            return await client.poll(request)
        finally:
            await client.aclose()

    return run(go())


def invoke(*args: str):
    # a wide terminal, so that rich's tables do not fold the words the tests look for
    return runner.invoke(app, ["approvals", *args], env={"COLUMNS": "240"})


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_not_logged_in_is_a_clear_error(cli_env):
    result = invoke("list")
    assert result.exit_code == 1
    assert "not logged in" in result.output and "warrant login" in result.output


def test_list_approve_and_the_agent_collects(ciba_stack, cli_env):
    _save_login(ciba_stack)
    empty = invoke("list")
    assert empty.exit_code == 0 and "No approval requests" in empty.output
    request = _start(ciba_stack, message="Create gist from the CLI")
    listed = invoke("list", "--json")
    assert listed.exit_code == 0, listed.output
    [item] = json.loads(listed.output)
    assert item["binding_message"] == "Create gist from the CLI"
    assert request.auth_req_id not in listed.output
    table = invoke("list")
    assert "Create gist from the CLI" in table.output and "Warrant agent" in table.output
    approved = invoke("approve", item["id"])
    assert approved.exit_code == 0, approved.output
    assert "Approved" in approved.output and "Create gist from the CLI" in approved.output
    assert _poll(ciba_stack, request).access_token
    twice = invoke("approve", item["id"])
    assert twice.exit_code == 1 and "already approved" in twice.output
    history = json.loads(invoke("list", "--all", "--json").output)
    assert [h["status"] for h in history if h["id"] == item["id"]] == ["approved"]


def test_deny_and_other_users_ids(ciba_stack, cli_env):
    _save_login(ciba_stack)
    mine = _start(ciba_stack, message="Deny me")
    bobs = _start(ciba_stack, user=BOB, message="Bob request")
    ciba = ciba_stack.provider.extensions["ciba"]
    bob_record = ciba.get(bobs.auth_req_id)
    stolen = invoke("approve", bob_record.id)
    assert stolen.exit_code == 1 and "No such approval request" in stolen.output
    assert ciba.get(bob_record.id).status == "pending"
    [my_record] = [r for r in ciba.pending(ALICE) if r.binding_message == "Deny me"]
    denied = invoke("deny", my_record.id)
    assert denied.exit_code == 0 and "Denied" in denied.output
    with pytest.raises(ApprovalDenied):
        _poll(ciba_stack, mine)
    ciba.decide(bob_record.id, BOB, approve=False)  # leave nothing pending behind


def test_provider_unreachable_and_no_api(ciba_stack, cli_env):
    dead = f"http://127.0.0.1:{_closed_port()}/"
    _save_login(ciba_stack, issuer=dead)
    with get_settings.override(issuer=dead):
        result = invoke("list")
    assert result.exit_code == 1 and "could not be reached" in result.output
    other = ciba_stack.github_url.rstrip("/") + "/"
    _save_login(ciba_stack, issuer=other)
    with get_settings.override(issuer=other):
        result = invoke("approve", "apr_x")
    assert result.exit_code == 1
    assert "no approvals API" in result.output or "authenticator" in result.output


def test_a_rejected_login_asks_to_log_in_again(ciba_stack, cli_env):
    """The approvals API credential comes from the CLI's refresh token: a bad one is a re-login."""
    _save_login(ciba_stack)
    stored = TokenFile().load()
    TokenFile().save(
        TokenSet(**{**stored.__dict__, "refresh_token": stored.refresh_token[:-4] + "AAAA"})
    )
    result = invoke("list")
    assert result.exit_code == 1 and "warrant login" in result.output
    TokenFile().save(TokenSet(**{**stored.__dict__, "refresh_token": None}))
    result = invoke("list")
    assert result.exit_code == 1 and "warrant login" in result.output


def test_the_cli_answers_with_its_own_credential_not_the_access_token(ciba_stack, cli_env):
    """A broken access token does not matter: the agent server's copy of it approves nothing."""
    _save_login(ciba_stack)
    stored = TokenFile().load()
    TokenFile().save(
        TokenSet(**{**stored.__dict__, "access_token": stored.access_token[:-4] + "AAAA"})
    )
    request = _start(ciba_stack)
    ciba = ciba_stack.provider.extensions["ciba"]
    record = ciba.get(request.auth_req_id)
    result = invoke("approve", record.id)
    assert result.exit_code == 0, result.output
    assert ciba.get(record.id).status == "approved"


async def _record(ledger: ApprovalsLedger, user: str, call: str, message: str, status):
    record, _ = await ledger.reserve(
        user_id=user,
        thread_id="thread-1",
        tool_call_id=call,
        tool_name="create_public_gist",
        action_digest="d" * 64,
        binding_message=message,
    )
    await ledger.attach_request(record.id, auth_req_id=f"req-{call}", expires_at=1e10, interval=5)
    if status is not None:
        await ledger.transition(record.id, status)


def test_log_prints_the_ledger(ciba_stack, cli_env):
    async def fill():
        ledger = ApprovalsLedger(cli_env.approvals_db)
        try:
            await _record(ledger, ALICE, "call-1", "Alice gist", ApprovalStatus.DENIED)
            await _record(ledger, BOB, "call-2", "Bob gist", None)
        finally:
            await ledger.close()

    no_login = invoke("log")
    assert no_login.exit_code == 1 and "--all" in no_login.output
    run(fill())
    everyone = json.loads(invoke("log", "--all", "--json").output)
    assert {r["binding_message"] for r in everyone} == {"Alice gist", "Bob gist"}
    assert all("auth_req_id" in r for r in everyone)  # the agent's own audit trail
    _save_login(ciba_stack)
    mine = invoke("log")
    assert mine.exit_code == 0 and "Alice gist" in mine.output and "Bob gist" not in mine.output
    denied = json.loads(invoke("log", "--all", "--status", "denied", "--json").output)
    assert [r["binding_message"] for r in denied] == ["Alice gist"]


def test_log_without_a_ledger_creates_nothing(ciba_stack, tmp_path):
    with get_settings.override(**ciba_stack.overrides, data_dir=tmp_path, approvals_db=None):
        result = invoke("log", "--all")
    assert result.exit_code == 0 and "No approvals recorded" in result.output
    assert not (tmp_path / "approvals.sqlite3").exists()
