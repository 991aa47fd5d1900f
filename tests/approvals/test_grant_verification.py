"""A CIBA grant is verified, not assumed: against the devstack provider, a token answer that
carries another user's genuine tokens, or no ID token, runs nothing; the ledger record fails and
the user is told why, without any token text."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.types import Command

from auth.approvals_ledger import ApprovalStatus
from graph.resumer import WAKE
from tests.approvals.conftest import (
    pending_interrupt,
    saved_graph,
    subject_of,
    tool_results,
    until_due,
)


@pytest.mark.parametrize("answer", ["another user's tokens", "no id_token"])
async def test_an_unproven_grant_runs_nothing(
    world, tmp_path, thread_config, monkeypatch, bob_tokens, answer: str
) -> None:
    provider = world.stack.provider
    bob = provider.users.get(subject_of(bob_tokens.access_token))
    issued: list[dict[str, Any]] = []
    original = provider.issue_tokens

    def issue(**kwargs: Any) -> dict[str, Any]:
        if answer == "another user's tokens":
            kwargs["user"] = bob  # genuine tokens, signed by the provider, for bob
        tokens = original(**kwargs)
        if answer == "no id_token":
            tokens.pop("id_token", None)
        issued.append(tokens)
        return tokens

    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
        world.approve(record)
        await until_due(record)
        monkeypatch.setattr(provider, "issue_tokens", issue)
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        [result] = tool_results(out)
        assert [t for t in issued if "access_token" in t], "the provider did answer 200"
        assert result.status == "error"
        assert "could not be verified" in result.content and "nothing was done" in result.content
        why = "another user" if answer == "another user's tokens" else "no ID token"
        assert why in result.content
        failed = await world.record(record.id)
        assert failed.status is ApprovalStatus.FAILED
        assert failed.outcome.startswith("grant not verified")
        assert world.gists() == 0
        # Another nudge does not run it either: the record is final.
        again = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert world.gists() == 0
        texts = [str(m.content) for m in again["messages"]] + [failed.outcome]
        for tokens in issued:
            for value in tokens.values():
                if isinstance(value, str) and len(value) > 20:
                    assert not [t for t in texts if value in t]
