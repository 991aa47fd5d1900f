"""Honest outcomes: when GitHub does not answer after the Gist was sent, or a run is cut off
mid-action, the agent finds out what happened (the Gist carries its approval's marker) and says
so: `done` with the URL, `failed` when it is certainly not there, "unknown" when it cannot tell.
Never "nothing was done" for a Gist that exists."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from langgraph.types import Command

import graph.nodes.approval as approval_node
from auth.approvals_ledger import ApprovalStatus
from auth.ciba import CIBAClient
from auth.errors import ProviderUnavailable
from graph.resumer import WAKE
from settings import get_settings
from tests.approvals.conftest import pending_interrupt, saved_graph, tool_results, until_due
from tools.approved_action import approval_marker
from tools.github_client import GitHubClient, GitHubOutcomeUnknown


class Crash(BaseException):
    """The process dying mid-run (nothing catches it)."""


def _github(handler) -> GitHubClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return GitHubClient("https://api.github.test", "ghu_SECRET", http=http)


async def test_a_lost_answer_to_a_change_is_unknown_never_nothing() -> None:
    def read_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("closed", request=request)

    for handler in (read_timeout, dropped):
        with pytest.raises(GitHubOutcomeUnknown) as err:
            await _github(handler).create_gist({"a.md": "x"}, public=True)
        assert "not known" in str(err.value) and "nothing" not in str(err.value)
        assert "ghu_SECRET" not in str(err.value)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    # Never sent, or only read: GitHub cannot have acted, so "unavailable" is the truth.
    with pytest.raises(ProviderUnavailable):
        await _github(refused).create_gist({"a.md": "x"})
    with pytest.raises(ProviderUnavailable):
        await _github(read_timeout).list_gists()
    # An answer, even an error, is GitHub saying what happened.
    with pytest.raises(ProviderUnavailable):
        await _github(lambda r: httpx.Response(502, json={})).create_gist({"a.md": "x"})


def _github_store(world) -> Any:
    return world.stack._services["github"].app.state.store


def _slow_github(world, monkeypatch, *, creates: bool) -> None:
    """GitHub that answers a Gist creation only after the agent gave up (with or without having
    created it)."""
    store = _github_store(world)
    add = store.add_gist

    def add_slowly(gist_id: str, login: str, body: dict[str, Any]) -> None:
        if creates:
            add(gist_id, login, body)
        time.sleep(1.0)  # the devstack's own thread: the agent's 0.4 s timeout passes

    monkeypatch.setattr(store, "add_gist", add_slowly)


def _descriptions(world) -> list[str]:
    rows = _github_store(world)._run("SELECT body FROM gists")
    return [json.loads(body)["description"] for (body,) in rows]


async def _approved_and_due(world, graph, thread_config) -> Any:
    out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
    record = await world.record(pending_interrupt(out)["approval_id"])
    world.approve(record)
    await until_due(record)
    return record


async def test_a_gist_created_without_an_answer_is_reported_done_with_its_url(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    _slow_github(world, monkeypatch, creates=True)
    with get_settings.override(github_timeout_seconds=0.4):
        async with saved_graph(tmp_path / "cp.sqlite") as graph:
            record = await _approved_and_due(world, graph, thread_config)
            out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
    [result] = tool_results(out)
    assert result.status == "success", result.content
    assert "nothing was done" not in result.content
    done = await world.record(record.id)
    assert done.status is ApprovalStatus.DONE
    assert done.outcome.startswith("https://gist.github.com/") and done.outcome in result.content
    assert world.gists() == 1
    # The Gist carries the marker bound to this approval, which is how it was found.
    marker = approval_marker(record.id)
    assert [d for d in _descriptions(world) if f"[{marker}]" in d]


async def test_a_gist_not_created_without_an_answer_is_reported_not_done(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    _slow_github(world, monkeypatch, creates=False)
    monkeypatch.setattr(approval_node, "RECONCILE_DELAY_SECONDS", 0.05)
    with get_settings.override(github_timeout_seconds=0.4):
        async with saved_graph(tmp_path / "cp.sqlite") as graph:
            record = await _approved_and_due(world, graph, thread_config)
            out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
    [result] = tool_results(out)
    assert result.status == "error"
    assert "did not answer in time" in result.content and "was not done" in result.content
    failed = await world.record(record.id)
    assert failed.status is ApprovalStatus.FAILED and failed.outcome.startswith("not done")
    assert world.gists() == 0


async def test_when_the_check_fails_the_outcome_is_unknown_and_a_later_visit_settles_it(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    _slow_github(world, monkeypatch, creates=True)
    listing = GitHubClient.list_gists

    async def down(self, **kwargs: Any) -> list[dict[str, Any]]:
        raise ProviderUnavailable("GitHub", "HTTP 503")

    monkeypatch.setattr(GitHubClient, "list_gists", down)
    with get_settings.override(github_timeout_seconds=0.4):
        async with saved_graph(tmp_path / "cp.sqlite") as graph:
            record = await _approved_and_due(world, graph, thread_config)
            out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
            [result] = tool_results(out)
            assert result.status == "error"
            assert "is unknown" in result.content and "nothing was done" not in result.content
            unknown = await world.record(record.id)
            assert unknown.status is ApprovalStatus.EXECUTING  # it never runs again
            assert unknown.outcome.startswith("outcome unknown")
            assert world.gists() == 1

            # GitHub is back; the same call visited again (a replayed checkpoint) settles it.
            monkeypatch.setattr(GitHubClient, "list_gists", listing)
            monkeypatch.setattr(approval_node, "STALE_EXECUTION_SECONDS", 0.0)
            waiting = [
                s
                async for s in graph.aget_state_history(thread_config)
                if any(i.value.get("approval_id") == record.id for i in s.interrupts)
            ]
            out = await graph.ainvoke(Command(resume=WAKE), waiting[0].config, context=world.ctx)
    [result] = tool_results(out)[-1:]
    done = await world.record(record.id)
    assert done.status is ApprovalStatus.DONE and done.outcome in result.content
    assert world.gists() == 1


async def test_a_run_cut_off_mid_action_is_settled_from_the_users_gists(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    run = approval_node.execute_tool_call

    async def run_then_crash(*args: Any, **kwargs: Any) -> Any:
        await run(*args, **kwargs)  # the Gist is created ...
        raise Crash()  # ... and the process dies before recording it

    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        record = await _approved_and_due(world, graph, thread_config)
        monkeypatch.setattr(approval_node, "execute_tool_call", run_then_crash)
        with pytest.raises(Crash):
            await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert (await world.record(record.id)).status is ApprovalStatus.EXECUTING
        assert world.gists() == 1
        monkeypatch.setattr(approval_node, "execute_tool_call", run)
        # The next visit (once the record is stale: nothing could still be running it) finds
        # the Gist by its marker, records it and says so; it is not created a second time.
        monkeypatch.setattr(approval_node, "STALE_EXECUTION_SECONDS", 0.0)
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
    [result] = tool_results(out)
    assert result.status == "success" and "cut off" in result.content
    done = await world.record(record.id)
    assert done.status is ApprovalStatus.DONE
    assert done.outcome.startswith("https://gist.github.com/") and done.outcome in result.content
    assert world.gists() == 1


async def test_a_poll_answer_lost_in_a_crash_is_named_as_such(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    poll = CIBAClient.poll

    async def redeem_then_crash(self, request):
        await poll(self, request)  # the provider hands out the grant, once ...
        raise Crash()  # ... and the run that got it dies

    monkeypatch.setattr(approval_node, "REDEEM_GRACE_SECONDS", 0.1)
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        record = await _approved_and_due(world, graph, thread_config)
        monkeypatch.setattr(CIBAClient, "poll", redeem_then_crash)
        with pytest.raises(Crash):
            await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        monkeypatch.setattr(CIBAClient, "poll", poll)
        await until_due(await world.record(record.id))
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
    [result] = tool_results(out)
    assert result.status == "error"
    assert "no longer knows" not in result.content
    assert "collected by an earlier run" in result.content and "nothing was done" in result.content
    assert (await world.record(record.id)).status is ApprovalStatus.FAILED
    assert world.gists() == 0


async def test_a_request_the_provider_forgot_is_not_blamed_on_a_crash(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    monkeypatch.setattr(approval_node, "REDEEM_GRACE_SECONDS", 0.1)
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
        await until_due(record)
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        pending_interrupt(out)  # one poll answered "pending", and recorded
        assert world.polls(record) == 1
        assert (await world.record(record.id)).polled_at is None
        # The provider loses the request (a restart without its store, a purge).
        monkeypatch.setattr(world.ciba.store, "by_auth_req_id", lambda auth_req_id: None)
        await until_due(await world.record(record.id))
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
    [result] = tool_results(out)
    assert "no longer knows" in result.content and "earlier run" not in result.content
    assert world.gists() == 0


async def test_the_local_github_lists_gists_since_a_time_as_github_does(world) -> None:
    from auth.token_vault import get_token_vault
    from tools.github_client import GitHubRequestError

    token = await get_token_vault().get_token(
        user_id=world.sub,
        subject_token=world.ctx.subject_token,
        connection="github",
        scopes=["gist"],
    )
    client = GitHubClient(world.settings.github_api_url, token.access_token)
    made = await client.create_gist({"since.md": world.marker}, description=world.marker)
    everything = await client.list_gists(since=time.time() - 3600)
    assert made["id"] in [g["id"] for g in everything]
    assert made["id"] not in [g["id"] for g in await client.list_gists(since=time.time() + 3600)]
    with pytest.raises(GitHubRequestError):
        await client._request("GET", "/gists", params={"since": "yesterday"}, expect=list)
