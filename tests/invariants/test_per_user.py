"""Per-user everything: bob's approval (same thread id, same tool call id, approved by bob at
the provider) is never alice's; the approvals log shows each user only their own."""

from __future__ import annotations

import asyncio
import json
import time

from langgraph.types import Command
from typer.testing import CliRunner

from auth.approvals import get_ciba_client, get_ledger
from auth.approvals_ledger import ApprovalStatus, action_digest
from auth.ciba import authorization_details
from auth.login import TokenFile, TokenSet
from cli.main import app
from graph.resumer import WAKE
from tests.approvals.conftest import pending_interrupt, saved_graph, subject_of, tool_results


async def _bobs_approved_record(world, bob_sub: str, thread_id: str, call_id: str, args: dict):
    """A ledger record for bob on the same thread and tool call ids, approved by bob."""
    ledger = await get_ledger()
    digest = action_digest("create_public_gist", args)
    record, fresh = await ledger.reserve(
        user_id=bob_sub,
        thread_id=thread_id,
        tool_call_id=call_id,
        tool_name="create_public_gist",
        action_digest=digest,
        binding_message="Create public gist bob.md",
    )
    assert fresh
    request = await (await get_ciba_client()).start(
        bob_sub,
        "Create public gist bob.md",
        ["openid", "create:gist"],
        audience=world.settings.audience,
        authorization_details=authorization_details("create_public_gist", digest),
    )
    record = await ledger.attach_request(
        record.id, auth_req_id=request.auth_req_id, expires_at=request.expires_at, interval=1
    )
    world.ciba.decide(request.auth_req_id, bob_sub, True)
    return record


async def test_bobs_approval_on_the_same_ids_is_never_alices(
    world, scripted, tmp_path, thread_config, bob_tokens
) -> None:
    from tests.invariants.test_at_most_once import gist_call

    bob_sub = subject_of(bob_tokens.access_token)
    thread_id = thread_config["configurable"]["thread_id"]
    args = {"description": "dup", "content": world.marker, "filename": "dup.md"}
    bobs = await _bobs_approved_record(world, bob_sub, thread_id, "call_same", args)
    scripted.script = [gist_call(world, "call_same", world.marker)]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke({"messages": [("user", "go")]}, thread_config, context=world.ctx)
        payload = pending_interrupt(out)
        assert payload["approval_id"] != bobs.id  # alice is asked herself
        mine = await world.record(payload["approval_id"])
        assert mine.user_id == world.sub and mine.auth_req_id != bobs.auth_req_id
        for _ in range(2):
            await asyncio.sleep(max(0.0, (await world.record(mine.id)).next_poll_at - time.time()))
            out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
            pending_interrupt(out)
        assert tool_results(out) == []
    assert world.gists() == 0
    assert (await world.record(bobs.id)).status is ApprovalStatus.PENDING  # untouched


async def test_the_approvals_log_shows_each_user_only_their_own(
    world, tmp_path, thread_config, alice_tokens, bob_tokens
) -> None:
    bob_sub = subject_of(bob_tokens.access_token)
    ledger = await get_ledger()
    await ledger.reserve(
        user_id=bob_sub,
        thread_id="bobs-thread",
        tool_call_id="c1",
        tool_name="create_public_gist",
        action_digest="d" * 64,
        binding_message="Bob secret plan",
    )
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(world.ask("alice-plan.md"), thread_config, context=world.ctx)
        pending_interrupt(out)
    for who, tokens, sub in (("alice", alice_tokens, world.sub), ("bob", bob_tokens, bob_sub)):
        TokenFile().save(
            TokenSet(
                access_token=tokens.access_token,
                expires_at=tokens.expires_at,
                issuer=world.stack.issuer,
                client_id=world.settings.cli_client_id,
                audience=world.settings.audience,
                subject=sub,
                email=f"{who}@example.com",
                scope=tokens.scope,
            )
        )
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["approvals", "log", "--json"], env={"COLUMNS": "240"}
        )
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output)
        assert rows and {r["user_id"] for r in rows} == {sub}
        text = json.dumps(rows)
        if who == "alice":
            assert "alice-plan.md" in text and "Bob secret plan" not in text
        else:
            assert "Bob secret plan" in text and "alice-plan.md" not in text


async def test_the_acting_user_is_never_taken_from_input(tmp_path) -> None:
    """A caller naming another user in the input: the thread records (and checks) the caller."""
    import pytest
    from langgraph.checkpoint.memory import InMemorySaver

    from graph.agent import build_graph
    from graph.context import Context
    from graph.identity import IdentityMismatch

    alice = Context(user_id="auth0|alice", user_email="alice@example.com")
    bob = Context(user_id="auth0|bob", user_email="bob@example.com")
    graph = build_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "input-user"}}
    forged = {"sub": "auth0|bob", "email": "bob@example.com"}
    out = await graph.ainvoke(
        {"messages": [("user", "who am i")], "user": forged}, config, context=alice
    )
    assert out["user"]["sub"] == "auth0|alice"
    with pytest.raises(IdentityMismatch):
        await graph.ainvoke(
            {"messages": [("user", "who am i")], "user": forged}, config, context=bob
        )
    state = await graph.aget_state(config)
    assert state.values["user"]["sub"] == "auth0|alice"
