"""Fail closed: the ledger unwritable, the identity provider down at the push or at the
redemption, GitHub failing after the approval. Nothing runs that was not authorized, the user
gets a plain message (no stack trace), and nothing runs twice once things work again."""

from __future__ import annotations

import sqlite3

import pytest
from langgraph.types import Command

from auth.approvals import close_all
from auth.approvals_ledger import ApprovalsLedger, ApprovalStatus, action_digest
from graph.resumer import WAKE, resume_when_approved
from settings import get_settings
from tests.approvals.conftest import pending_interrupt, saved_graph, tool_results, until_due

DEAD = "http://127.0.0.1:9/"  # discard port: connection refused


async def _approved_and_due(world, graph, thread_config):
    """Ask for the Gist, approve it at the provider, and wait until the node may poll."""
    out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
    record = await world.record(pending_interrupt(out)["approval_id"])
    world.approve(record)
    await until_due(record)
    return record


def _break_transition(monkeypatch, status: ApprovalStatus, error: str) -> None:
    """The ledger fails (as SQLite would) when a record moves to `status`."""
    original = ApprovalsLedger.transition

    async def broken(self, approval_id, to, **kwargs):
        if to is status:
            raise sqlite3.OperationalError(error)
        return await original(self, approval_id, to, **kwargs)

    monkeypatch.setattr(ApprovalsLedger, "transition", broken)


def _digest(world, filename: str) -> str:
    return action_digest(
        "create_public_gist",
        {"description": "", "content": world.marker, "filename": filename},
    )


async def test_an_unwritable_ledger_refuses_plainly_before_any_push(
    world, tmp_path, thread_config
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the ledger's folder should be")
    await close_all()
    with get_settings.override(approvals_db=str(blocker / "approvals.sqlite3")):
        async with saved_graph(tmp_path / "cp.sqlite") as graph:
            out = await graph.ainvoke(world.ask("x.md"), thread_config, context=world.ctx)
    assert "__interrupt__" not in out
    [result] = tool_results(out)
    assert result.status == "error" and "nothing was done" in result.content
    assert "Traceback" not in result.content
    assert [r for r in world.ciba.requests(world.sub) if world.marker in str(r)] == []
    assert world.gists() == 0


async def test_a_ledger_failing_at_the_redemption_runs_nothing_and_never_twice(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        await _approved_and_due(world, graph, thread_config)
        _break_transition(monkeypatch, ApprovalStatus.APPROVED, "attempt to write a readonly db")
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        monkeypatch.undo()
        assert world.gists() == 0
        [result] = tool_results(out)
        assert result.status == "error" and "ledger is unavailable" in result.content
        assert "nothing was done" in result.content
        # With the ledger back, resuming never runs it twice (at most once).
        for _ in range(2):
            out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert world.gists() <= 1


async def test_provider_down_at_the_push_says_so_and_pushes_nothing(
    world, tmp_path, thread_config
) -> None:
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        with get_settings.override(issuer=DEAD):
            out = await graph.ainvoke(world.ask("down.md"), thread_config, context=world.ctx)
        assert "__interrupt__" not in out
        [result] = tool_results(out)
        assert result.status == "error" and "unavailable" in result.content
        assert world.pushes(_digest(world, "down.md")) == []
        # The provider is back: a resume of the finished turn does nothing by itself.
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert world.gists() == 0


async def test_github_down_after_the_approval_fails_once_and_is_never_retried(
    world, tmp_path, thread_config
) -> None:
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        record = await _approved_and_due(world, graph, thread_config)
        with get_settings.override(github_api_url=DEAD.rstrip("/")):
            out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        [result] = tool_results(out)
        assert result.status == "error" and "Traceback" not in result.content
        failed = await world.record(record.id)
        assert failed.status is ApprovalStatus.FAILED
        # GitHub is back: neither a resume nor the plain-Python resumer runs the approval again.
        await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        await resume_when_approved(graph, thread_config, context=world.ctx, timeout=5)
        assert world.gists() == 0
        assert (await world.record(record.id)).status is ApprovalStatus.FAILED


def _github_answering(status: int, body: str):
    """A GitHub stand-in that answers every request with `status` (a 5xx, or nonsense)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request):
        return Response(body, status_code=status, media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


@pytest.mark.parametrize(
    "stage", ["exchange", "github_502", "github_nonsense"], ids=["idp", "502", "nonsense"]
)
async def test_approved_but_connection_failing_runs_nothing(
    world, tmp_path, thread_config, monkeypatch, stage
) -> None:
    from auth.errors import ProviderUnavailable
    from auth.token_vault import TokenVault
    from tests.token_vault.helpers import serve

    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        record = await _approved_and_due(world, graph, thread_config)
        if stage == "exchange":

            async def down(self, *args, **kwargs):
                raise ProviderUnavailable("The identity provider", "HTTP 503")

            monkeypatch.setattr(TokenVault, "get_token", down)
            out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
            monkeypatch.undo()
        else:
            status, body = (
                (502, "<html>bad gateway</html>")
                if stage == "github_502"
                else (
                    201,
                    '{"html_url": 42}',
                )
            )
            with serve(_github_answering(status, body)) as url:
                # A generous timeout: on a loaded machine a slow answer would be "unknown"
                # (tests/approvals/test_honest_outcomes.py), which this test is not about.
                with get_settings.override(github_api_url=url, github_timeout_seconds=120.0):
                    out = await graph.ainvoke(
                        Command(resume=WAKE), thread_config, context=world.ctx
                    )
        [result] = tool_results(out)
        assert result.status == "error" and "Traceback" not in result.content
        assert world.gists() == 0
        assert (await world.record(record.id)).status is ApprovalStatus.FAILED
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert world.gists() == 0


async def test_a_ledger_failing_after_the_action_ran_reports_it_and_never_reruns(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        record = await _approved_and_due(world, graph, thread_config)
        _break_transition(monkeypatch, ApprovalStatus.DONE, "disk I/O error")
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        monkeypatch.undo()
        # The Gist exists: the user is told where, not that nothing happened.
        [result] = tool_results(out)
        assert result.status == "success" and result.content.startswith("https://gist.")
        assert world.gists() == 1
        assert (await world.record(record.id)).status is ApprovalStatus.EXECUTING
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert world.gists() == 1
