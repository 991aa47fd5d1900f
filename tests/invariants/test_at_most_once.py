"""At most once: the same tool call id in two threads, a reused id in a later turn, and two
'processes' (own event loops, own ledger connections) racing the same resume: one Gist each
approval at most, one push per tool call."""

from __future__ import annotations

import asyncio
import threading

from langchain_core.messages import AIMessage
from langgraph.types import Command

from auth.approvals import close_all
from auth.approvals_ledger import ApprovalRecord, ApprovalStatus
from graph.resumer import WAKE, resume_when_approved
from tests.approvals.conftest import pending_interrupt, saved_graph, tool_results, until_due


def gist_call(world, call_id: str, marker: str, filename: str = "dup.md") -> AIMessage:
    args = {"description": "dup", "content": marker, "filename": filename}
    call = {"name": "create_public_gist", "args": args, "id": call_id, "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call])


def ask() -> dict:
    return {"messages": [("user", "make the gist")]}


async def test_one_tool_call_id_in_two_threads_is_two_separate_approvals(
    world, scripted, tmp_path
) -> None:
    a = {"configurable": {"thread_id": "dup-a-" + world.marker[-8:]}}
    b = {"configurable": {"thread_id": "dup-b-" + world.marker[-8:]}}
    mark_a, mark_b = world.marker + "-a", world.marker + "-b"
    scripted.script = [gist_call(world, "call_dup", mark_a), gist_call(world, "call_dup", mark_b)]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        rec_a = await world.record(
            pending_interrupt(await graph.ainvoke(ask(), a, context=world.ctx))["approval_id"]
        )
        rec_b = await world.record(
            pending_interrupt(await graph.ainvoke(ask(), b, context=world.ctx))["approval_id"]
        )
        assert rec_a.id != rec_b.id and rec_a.auth_req_id != rec_b.auth_req_id
        world.approve(rec_a)  # only thread a's action is approved
        out = await resume_when_approved(graph, a, context=world.ctx, timeout=10)
        assert [m.status for m in tool_results(out)] == ["success"]
        await until_due(await world.record(rec_b.id))
        out = await graph.ainvoke(Command(resume=WAKE), b, context=world.ctx)
        assert pending_interrupt(out)["approval_id"] == rec_b.id
        assert world.gists(mark_a) == 1 and world.gists(mark_b) == 0


async def test_a_reused_tool_call_id_in_a_later_turn_never_runs_again(
    world, scripted, tmp_path, thread_config
) -> None:
    scripted.script = [gist_call(world, "call_same", world.marker)]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
        world.approve(record)
        await resume_when_approved(graph, thread_config, context=world.ctx, timeout=10)
        assert world.gists() == 1
        # A model that reuses the id: same arguments, then other arguments.
        other = world.marker + "-other"
        scripted.script = [
            gist_call(world, "call_same", world.marker),
            gist_call(world, "call_same", other, "other.md"),
        ]
        out = await graph.ainvoke(ask(), thread_config, context=world.ctx)
        same, changed = tool_results(out)[-2:]  # the model made both calls in this turn
        assert "will not run again" in same.content
        assert changed.status == "error" and "different arguments" in changed.content
        assert world.gists() == 1 and world.gists(other) == 0
        assert len(world.pushes(record.action_digest)) == 1


def _resume_in_own_loop(path, config, ctx, results: list, barrier: threading.Barrier) -> None:
    async def run() -> None:
        async with saved_graph(path) as graph:
            barrier.wait(timeout=10)
            try:
                out = await graph.ainvoke(Command(resume=WAKE), config, context=ctx)
                results.append([m.status for m in tool_results(out)])
            except Exception as exc:
                results.append(type(exc).__name__)
            finally:
                await close_all()

    asyncio.run(run())


async def test_two_processes_racing_one_resume_make_one_gist(
    world, tmp_path, thread_config
) -> None:
    path = tmp_path / "cp.sqlite"
    async with saved_graph(path) as graph:
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        record = await world.record(pending_interrupt(out)["approval_id"])
    world.approve(record)
    await until_due(record)
    results: list = []
    barrier = threading.Barrier(3)
    workers = [
        threading.Thread(
            target=_resume_in_own_loop, args=(path, thread_config, world.ctx, results, barrier)
        )
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    await asyncio.to_thread(lambda: [w.join(timeout=30) for w in workers])
    assert len(results) == 3, results
    assert world.gists() == 1, results
    assert (await world.record(record.id)).status is ApprovalStatus.DONE
    assert len(world.pushes(record.action_digest)) == 1


def two_calls(first: tuple[str | None, str], second: tuple[str | None, str]) -> AIMessage:
    calls = [
        {
            "name": "create_public_gist",
            "args": {"description": "twin", "content": marker, "filename": f"twin-{n}.md"},
            "id": call_id,
            "type": "tool_call",
        }
        for n, (call_id, marker) in enumerate((first, second))
    ]
    return AIMessage(content="", tool_calls=calls)


def test_answers_are_counted_per_call_for_missing_and_shared_ids() -> None:
    from langchain_core.messages import ToolMessage

    from graph.routing import pending_tool_calls

    for call_id in (None, "same"):
        ai = two_calls((call_id, "a"), (call_id, "b"))
        first, second = ai.tool_calls
        assert pending_tool_calls([ai]) == [first, second]
        answer = ToolMessage("done", tool_call_id=call_id or "")
        assert pending_tool_calls([ai, answer]) == [second]
        assert pending_tool_calls([ai, answer, answer]) == []


async def _two_calls_approved_in_turn(
    world, scripted, tmp_path, thread_config, first_id: str | None, second_id: str | None
) -> tuple[ApprovalRecord, ApprovalRecord]:
    """The agent asks for two Gists in one reply (with these tool call ids); alice approves the
    first, which runs, then the second, its own request, which runs too: each exactly once.
    Returns the two approval records."""
    one, two = world.marker + "-1", world.marker + "-2"
    scripted.script = [two_calls((first_id, one), (second_id, two))]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(ask(), thread_config, context=world.ctx)
        first = await world.record(pending_interrupt(out)["approval_id"])
        world.approve(first)
        await until_due(first)
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        second = await world.record(pending_interrupt(out)["approval_id"])
        assert second.id != first.id
        assert world.gists(one) == 1 and world.gists(two) == 0
        world.approve(second)
        await until_due(second)
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert "__interrupt__" not in out
        assert [m.status for m in tool_results(out)] == ["success", "success"]
        assert world.gists(one) == 1 and world.gists(two) == 1
        assert len(world.pushes(first.action_digest)) == 1
        assert len(world.pushes(second.action_digest)) == 1
    return first, second


async def test_calls_without_an_id_each_get_their_own_approval_and_run_once(
    world, scripted, tmp_path, thread_config
) -> None:
    # The first runs; the second (also without an id) is its own request, not "done once".
    first, second = await _two_calls_approved_in_turn(
        world, scripted, tmp_path, thread_config, None, None
    )
    assert second.action_digest != first.action_digest


async def test_calls_sharing_an_id_in_one_reply_are_answered_once_each(
    world, scripted, tmp_path, thread_config
) -> None:
    # The agent node gives a repeated id a fresh one before routing (graph.nodes.agent), so the
    # twins are two calls with two approvals: one approval never covers both.
    first, second = await _two_calls_approved_in_turn(
        world, scripted, tmp_path, thread_config, "call_twin", "call_twin"
    )
    assert second.tool_call_id != first.tool_call_id
