"""Resumers against the devstack: a real ping wakes the thread with no client action; replayed
and concurrent pings and resumes still make exactly one Gist; the poller wakes only due
requests; a restart in the middle never pushes twice and still completes once."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import pytest
from langgraph.types import Command
from starlette.applications import Starlette

import auth.credentials
import graph.nodes.approval as approval_node
from auth.approvals import close_all, get_ledger, notification_token
from auth.approvals_ledger import ApprovalStatus
from graph.callbacks import CALLBACK_PATH, routes
from graph.resumer import WAKE, ApprovalPoller, CallbackResumer, GraphResumer, set_resumer
from settings import get_settings
from tests.approvals.conftest import (
    pending_interrupt,
    saved_graph,
    serve_here,
    tool_results,
    until_due,
)
from tests.approvals.pending import pending_approval


class ProcessDied(BaseException):
    """Stands for the process dying while the approved tool runs (not an ordinary error)."""


async def _until_status(world, approval_id: str, *wanted: ApprovalStatus, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = await world.record(approval_id)
        if record.status in wanted:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"approval {approval_id} is still {record.status}")


async def test_a_ping_resumes_the_thread_and_replays_change_nothing(
    world, tmp_path, thread_config
) -> None:
    agent_id = world.settings.agent_client_id
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        # The resumed run gets no context at all: no user token, as from a real callback.
        resumer = GraphResumer(graph)
        set_resumer(resumer)
        async with serve_here(Starlette(routes=routes)) as url:
            world.ciba.set_delivery(agent_id, "ping", url + CALLBACK_PATH)
            with get_settings.override(ciba_delivery_mode="ping"):
                out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
                record = await world.record(pending_interrupt(out)["approval_id"])
                # In ping mode the poller only looks rarely: the ping is what wakes the thread.
                assert record.next_poll_at > time.time() + 30
                auth.credentials.credential_store().clear()

                world.approve(record)
                done = await _until_status(world, record.id, ApprovalStatus.DONE)
                await world.ciba.flush()
                assert world.ciba.stats(record.auth_req_id)["pings"] == 1
                assert world.gists() == 1
                # The ledger says DONE before the resumed run has saved its last checkpoint.
                for _ in range(600):
                    if resumer.results:
                        break
                    await asyncio.sleep(0.05)
                state = await graph.aget_state(thread_config)
                assert not state.interrupts
                assert done.outcome in state.values["messages"][-1].content

                # Replayed and concurrent pings after the fact: 204, nothing runs again.
                headers = {"Authorization": f"Bearer {notification_token(record.id)}"}
                async with httpx.AsyncClient() as http:
                    answers = await asyncio.gather(
                        *(
                            http.post(
                                url + CALLBACK_PATH,
                                json={"auth_req_id": record.auth_req_id},
                                headers=headers,
                            )
                            for _ in range(5)
                        )
                    )
                assert [a.status_code for a in answers] == [204] * 5
                assert world.gists() == 1
                assert len(world.pushes(record.action_digest)) == 1
                assert len(resumer.results) == 1


async def test_concurrent_pings_while_pending_make_one_gist(world, tmp_path, thread_config) -> None:
    agent_id = world.settings.agent_client_id
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        set_resumer(GraphResumer(graph))
        async with serve_here(Starlette(routes=routes)) as url:
            world.ciba.set_delivery(agent_id, "ping", url + CALLBACK_PATH)
            with get_settings.override(ciba_delivery_mode="ping"):
                out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
                record = await world.record(pending_interrupt(out)["approval_id"])
                headers = {"Authorization": f"Bearer {notification_token(record.id)}"}
                world.approve(record)  # the provider's own ping races ours
                async with httpx.AsyncClient(timeout=30) as http:
                    answers = await asyncio.gather(
                        *(
                            http.post(
                                url + CALLBACK_PATH,
                                json={"auth_req_id": record.auth_req_id},
                                headers=headers,
                            )
                            for _ in range(6)
                        )
                    )
                assert {a.status_code for a in answers} == {204}
                await _until_status(world, record.id, ApprovalStatus.DONE)
                await world.ciba.flush()
                await asyncio.sleep(0.3)  # let any straggling wake finish
                assert world.gists() == 1


async def test_concurrent_resumes_of_one_thread_make_one_gist(
    world, tmp_path, thread_config
) -> None:
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
        world.approve(record)
        await until_due(record)
        outs = await asyncio.gather(
            *(
                graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
                for _ in range(4)
            )
        )
        assert world.gists() == 1
        results = [m for out in outs for m in tool_results(out)]
        assert sum(m.status == "success" for m in results) >= 1
        assert (await world.record(record.id)).status is ApprovalStatus.DONE
        assert world.polls(record) >= 1


async def test_the_poller_wakes_only_due_requests_and_completes_once(
    world, tmp_path, thread_config
) -> None:
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        resumer = GraphResumer(graph, context=lambda record: world.ctx)
        poller = ApprovalPoller(resumer, tick=0.05)
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
        assert await poller.run_once() == 0  # the provider's interval has not elapsed
        world.approve(record)
        await until_due(record)
        assert await poller.run_once() == 1
        assert (await world.record(record.id)).status is ApprovalStatus.DONE
        assert world.gists() == 1
        assert await poller.run_once() == 0  # done: off the work list
        assert world.polls(record) == 1


async def test_the_poller_keeps_waiting_threads_waiting_and_closes_gone_ones(
    world, tmp_path, thread_config
) -> None:
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        resumer = GraphResumer(graph, context=lambda record: world.ctx)
        poller = ApprovalPoller(resumer)
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
        await until_due(record)
        assert await poller.run_once() == 1
        assert world.polls(record) == 1 and world.gists() == 0
        assert (await world.record(record.id)).status is ApprovalStatus.PENDING
        assert await poller.run_once() == 0  # not again before its interval

    async with saved_graph(tmp_path / "other.sqlite") as empty:  # the thread is gone
        poller = ApprovalPoller(GraphResumer(empty))
        await until_due(await world.record(record.id))
        assert await poller.run_once() == 1
        assert (await world.record(record.id)).status is ApprovalStatus.FAILED


async def test_callback_resumer_knocks_on_the_servers_callback(world) -> None:
    ledger = await get_ledger()
    record = await pending_approval(
        ledger, user_id=world.sub, thread_id="t-cb", tool_call_id="c1", digest="e" * 64, interval=1
    )
    woken: list[str] = []

    class Recorder:
        async def resume(self, rec):
            woken.append(rec.id)
            from graph.resumer import ResumeResult

            return ResumeResult.RESUMED

    set_resumer(Recorder())
    async with serve_here(Starlette(routes=routes)) as url:
        from graph.resumer import ResumeResult

        assert await CallbackResumer(url).resume(record) is ResumeResult.RESUMED
        # A request the server does not know: GONE, and nothing is woken.
        stranger = dataclasses.replace(record, auth_req_id="unknown-" + record.id)
        assert await CallbackResumer(url).resume(stranger) is ResumeResult.GONE
    assert woken == [record.id]


async def test_restart_in_the_middle_never_pushes_twice(world, tmp_path, thread_config) -> None:
    db = tmp_path / "cp.sqlite"
    async with saved_graph(db) as graph:
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
    await close_all()  # the first process is gone: its ledger connection too

    async with saved_graph(db) as graph:  # a new process on the same files
        await until_due(await world.record(record.id))
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert pending_interrupt(out)["approval_id"] == record.id
        assert len(world.pushes(record.action_digest)) == 1
    await close_all()

    async with saved_graph(db) as graph:
        world.approve(record)
        from graph.resumer import resume_when_approved

        out = await resume_when_approved(graph, thread_config, context=world.ctx, timeout=10)
        [result] = tool_results(out)
        assert result.status == "success"
        assert world.gists() == 1
        assert len(world.pushes(record.action_digest)) == 1


async def test_a_crash_while_executing_never_runs_the_action_again(
    world, tmp_path, thread_config, monkeypatch
) -> None:
    db = tmp_path / "cp.sqlite"
    async with saved_graph(db) as graph:
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
        world.approve(record)
        await until_due(record)

        async def crash(*args, **kwargs):
            raise ProcessDied()

        monkeypatch.setattr(approval_node, "execute_tool_call", crash)
        with pytest.raises(ProcessDied):
            await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        monkeypatch.undo()
    assert (await world.record(record.id)).status is ApprovalStatus.EXECUTING
    await close_all()

    async with saved_graph(db) as graph:
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        [result] = tool_results(out)
        assert result.status == "error" and "will not run a second time" in result.content
        assert world.gists() == 0
        assert len(world.pushes(record.action_digest)) == 1
