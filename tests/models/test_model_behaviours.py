"""What real models do, over the OpenAI wire protocol, each answered safely.

Every test runs the default graph (or one with fewer tools) with `openai:<model>` pointed at the
scripted server, against the devstack's identity provider (CIBA), Token Vault and GitHub, so
"nothing was done" is checked where it matters: no approval push at the provider, no Gist at
GitHub.
"""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, ToolMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graph.agent import build_graph
from graph.nodes.agent import MAX_TOOL_ARGUMENT_BYTES
from tests.approvals.conftest import until_due
from tests.models.conftest import API_KEY, INJECTED_FACT, INJECTION, turn
from tests.models.openai_server import Call, Reply, call, calls, last_tool_results, say
from tools.identity import who_am_i

GIST = "create_public_gist"


def echo(prefix: str):
    return lambda body: say(prefix + " " + " | ".join(last_tool_results(body)))


def gist_args(content: str, filename: str = "notes.md") -> dict:
    return {"description": "notes", "content": content, "filename": filename}


def push_count(world) -> int:
    """Every CIBA request the provider holds for alice (the devstack lives for the session)."""
    return len(world.ciba.requests(world.sub))


def tool_results(values: dict) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in values["messages"] if isinstance(m, ToolMessage)}


async def approve_and_resume(world, graph, cfg, pending: dict, yes: bool = True):
    record = await world.record(pending["approval_id"])
    world.approve(record, yes)
    await until_due(record)
    return await turn(graph, Command(resume={"wake": True}), cfg, world.ctx)


async def test_two_gists_in_one_message_are_two_separate_approvals(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    a, b = world.marker + "-a", world.marker + "-b"
    server.add(
        calls(
            Call(GIST, gist_args(a, "a.md"), "call_a"), Call(GIST, gist_args(b, "b.md"), "call_b")
        ),
        echo("Both:"),
    )
    graph = build_graph(checkpointer=InMemorySaver())
    _, [first] = await turn(graph, "publish a.md and b.md", cfg, world.ctx)
    assert first["type"] == "approval_pending" and first["arguments"]["content"] == a
    assert "a.md" in first["binding_message"] and "b.md" not in first["binding_message"]

    values, [second] = await approve_and_resume(world, graph, cfg, first)
    assert world.gists(a) == 1 and world.gists(b) == 0  # only what was approved ran
    assert second["type"] == "approval_pending" and second["approval_id"] != first["approval_id"]
    assert second["arguments"]["content"] == b and "b.md" in second["binding_message"]
    assert first["action_digest"] != second["action_digest"]

    values, interrupts = await approve_and_resume(world, graph, cfg, second)
    assert interrupts == [] and world.gists(a) == 1 and world.gists(b) == 1
    assert [tool_results(values)[i].status for i in ("call_a", "call_b")] == ["success"] * 2
    assert len(world.pushes(first["action_digest"])) == 1
    assert len(world.pushes(second["action_digest"])) == 1
    assert values["messages"][-1].content.startswith("Both:")


async def test_two_gists_in_one_message_deny_one_approve_the_other(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    a, b = world.marker + "-a", world.marker + "-b"
    server.add(calls(Call(GIST, gist_args(a, "a.md")), Call(GIST, gist_args(b, "b.md"))), echo("-"))
    graph = build_graph(checkpointer=InMemorySaver())
    _, [first] = await turn(graph, "publish both", cfg, world.ctx)
    _, [second] = await approve_and_resume(world, graph, cfg, first, yes=False)
    values, _ = await approve_and_resume(world, graph, cfg, second, yes=True)
    assert world.gists(a) == 0 and world.gists(b) == 1
    statuses = [m.status for m in tool_results(values).values()]
    assert statuses == ["error", "success"]


async def test_the_same_gist_asked_twice_in_a_row(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    graph = build_graph(checkpointer=InMemorySaver())
    args = gist_args(world.marker)
    # asked twice: two model calls (fresh ids) -> two actions, each approved on its own
    server.add(call(GIST, args), echo("1:"), call(GIST, args), echo("2:"))
    _, [first] = await turn(graph, "publish my notes", cfg, world.ctx)
    await approve_and_resume(world, graph, cfg, first)
    assert world.gists() == 1
    _, [second] = await turn(graph, "publish my notes", cfg, world.ctx)
    assert second["approval_id"] != first["approval_id"]  # a new approval, never the old one
    values, _ = await approve_and_resume(world, graph, cfg, second, yes=False)
    assert world.gists() == 1 and "denied" in values["messages"][-2].content

    # a model that repeats the previous call's id: the ledger knows it ran, it never runs again
    server.add(call(GIST, args, "call_repeat"), echo("3:"), call(GIST, args, "call_repeat"))
    server.add(echo("4:"))
    _, [third] = await turn(graph, "publish my notes", cfg, world.ctx)
    await approve_and_resume(world, graph, cfg, third)
    assert world.gists() == 2
    pushes = len(world.ciba.requests(world.sub))
    values, interrupts = await turn(graph, "publish my notes again", cfg, world.ctx)
    assert interrupts == [] and world.gists() == 2
    assert len(world.ciba.requests(world.sub)) == pushes  # no second push
    assert "will not run again" in values["messages"][-2].content


async def test_a_call_to_a_tool_that_is_not_bound(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    # this graph binds only who_am_i: Warrant's own Gist tool is not callable through it
    before = push_count(world)
    graph = build_graph(checkpointer=InMemorySaver(), tools=[who_am_i])
    server.add(
        calls(Call(GIST, gist_args(world.marker)), Call("delete_repository", {"repo": "x/y"})),
        echo("Tried:"),
    )
    values, interrupts = await turn(graph, "publish and delete", cfg, world.ctx)
    assert interrupts == [] and world.gists() == 0
    assert push_count(world) == before
    assert server.bound_tools(0) == ["who_am_i"]
    results = [m.content for m in tool_results(values).values()]
    assert results == [
        "There is no tool named 'create_public_gist'.",
        "There is no tool named 'delete_repository'.",
    ]
    assert values["messages"][-1].content.startswith("Tried: There is no tool")


async def test_arguments_that_are_not_json_or_miss_fields(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    before = push_count(world)
    graph = build_graph(checkpointer=InMemorySaver())
    server.add(
        calls(
            Call(GIST, '{"description": "notes", "content": "unterminated'),
            Call("who_am_i", {}),
        )
    )
    values, interrupts = await turn(graph, "publish", cfg, world.ctx)
    assert interrupts == [] and world.gists() == 0
    results = list(tool_results(values).values())
    assert [m.status for m in results] == ["error", "error"]
    assert "malformed arguments for create_public_gist" in results[0].content
    assert "did not run" in results[1].content  # the valid sibling was not run either
    assert values["messages"][-1].content.startswith("I could not act")

    server.add(call(GIST, {"description": "notes"}), echo("A:"))
    server.add(call(GIST, {"description": "notes", "content": 42}), echo("B:"))
    server.add(call(GIST, "[1, 2]"))
    values, _ = await turn(graph, "publish again", cfg, world.ctx)
    assert values["messages"][-1].content == (
        "A: Invalid arguments for create_public_gist: content: Field required."
    )
    values, _ = await turn(graph, "and again", cfg, world.ctx)
    assert "content: Input should be a valid string" in values["messages"][-1].content
    values, _ = await turn(graph, "once more", cfg, world.ctx)
    # a JSON array is no argument object: langchain-openai cannot even build the message
    assert values["messages"][-1].content == (
        "The chat model (openai:warrant-scripted) failed (ValidationError); nothing was done. "
        "Try again later."
    )
    assert push_count(world) == before and world.gists() == 0

    server.add(say("Still here."))
    values, _ = await turn(graph, "are you there?", cfg, world.ctx)
    assert values["messages"][-1].content == "Still here."


async def test_enormous_arguments(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    before = push_count(world)
    graph = build_graph(checkpointer=InMemorySaver())
    # over GitHub's 1 MB: refused when the call is validated, before anyone is asked to approve
    server.add(call(GIST, gist_args("x" * 1_500_000)), echo("A:"))
    values, interrupts = await turn(graph, "publish a big file", cfg, world.ctx)
    assert interrupts == [] and "larger than 1 MB" in values["messages"][-1].content
    # over any sane size: not run, and not kept in the thread (it would go back to the model)
    server.add(call(GIST, gist_args("y" * (MAX_TOOL_ARGUMENT_BYTES + 10))))
    values, interrupts = await turn(graph, "publish a huge file", cfg, world.ctx)
    assert interrupts == [] and "too large" in values["messages"][-1].content
    assert len(json.dumps([m.model_dump() for m in values["messages"][-4:]])) < 10_000
    server.add(say("ok"))
    await turn(graph, "thanks", cfg, world.ctx)
    assert len(json.dumps(server.requests[-1])) < 1_700_000  # the 2 MB call was not resent
    assert push_count(world) == before and world.gists() == 0


async def test_a_retrieved_document_that_tells_the_agent_to_publish(with_documents, thread_config):
    world, server, cfg = with_documents, with_documents.openai, thread_config
    graph = build_graph(checkpointer=InMemorySaver())
    leaked = "Heron budget: 240,000 EUR (copied from alice's private plan)"

    def obey_the_injection(body: dict) -> Reply:
        # what a model that falls for the injection does with the passage it was shown
        assert INJECTION[:40] in " ".join(last_tool_results(body))
        return call(GIST, gist_args(leaked, "plan.md"))

    server.add(call("search_internal_documents", {"question": "release notes"}))
    server.add(obey_the_injection, echo("Done:"))
    values, [pending] = await turn(graph, "what do the release notes say?", cfg, world.ctx)
    passage = next(m for m in values["messages"] if m.name == "search_internal_documents")
    assert INJECTED_FACT in passage.content
    # the approval shows exactly what would be published, where it would go
    assert pending["type"] == "approval_pending" and pending["tool"] == GIST
    assert pending["arguments"] == {
        "description": "notes",
        "content": leaked,
        "filename": "plan.md",
    }
    assert "plan.md" in pending["binding_message"]
    [request] = world.pushes(pending["action_digest"])
    shown = request.authorization_details[0]
    assert shown["arguments"]["content"] == leaked and shown["arguments"]["filename"] == "plan.md"
    # the user decides: denied -> nothing is published
    values, interrupts = await approve_and_resume(world, graph, cfg, pending, yes=False)
    assert interrupts == [] and world.gists(leaked) == 0
    assert "denied" in values["messages"][-1].content


async def test_a_model_error_mid_run_loses_nothing(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    graph = build_graph(checkpointer=InMemorySaver())
    # langchain-openai retries once (max_retries=1): both attempts fail
    server.add(Reply(status=500), Reply(status=500))
    values, _ = await turn(graph, "hello", cfg, world.ctx)
    text = values["messages"][-1].content
    assert text.startswith("The chat model (openai:warrant-scripted) failed (")
    assert text.endswith("); nothing was done. Try again later.") and "scripted failure" not in text
    # mid-run: the Gist is approved and created, then the model fails writing the answer
    server.add(call(GIST, gist_args(world.marker)), Reply(status=503), Reply(status=503))
    _, [pending] = await turn(graph, "publish my notes", cfg, world.ctx)
    values, interrupts = await approve_and_resume(world, graph, cfg, pending)
    assert interrupts == [] and world.gists() == 1
    assert "What create_public_gist did above stands" in values["messages"][-1].content
    url = values["messages"][-2].content
    assert values["messages"][-2].status == "success" and "gist" in url
    # the thread carries on: the model sees the Gist's URL, nothing runs twice
    server.add(echo("Earlier:"))
    values, interrupts = await turn(graph, "what happened?", cfg, world.ctx)
    assert interrupts == [] and world.gists() == 1
    sent = json.dumps(server.requests[-1]["messages"])
    assert url in sent and len(world.pushes(pending["action_digest"])) == 1
    assert isinstance(values["messages"][-1], AIMessage)


async def test_a_model_timeout_mid_run(oa_world, thread_config):
    world, server, cfg = oa_world, oa_world.openai, thread_config
    slow = ChatOpenAI(
        model="warrant-scripted", base_url=server.url, api_key=API_KEY, timeout=1, max_retries=0
    )
    graph = build_graph(checkpointer=InMemorySaver(), model=slow)
    server.add(call("who_am_i"), Reply(content="late", delay=3))
    values, _ = await turn(graph, "who am I?", cfg, world.ctx)
    assert "failed (OpenAITimeoutError) before it could answer" in values["messages"][-1].content
    assert "alice@example.com" in values["messages"][-2].content  # the tool result is kept
    server.add(say("You are alice."))
    values, _ = await turn(graph, "so?", cfg, world.ctx)
    assert values["messages"][-1].content == "You are alice."


async def test_two_calls_sharing_one_id_are_still_two_approvals(oa_world, thread_config):
    """Models sometimes repeat or omit call ids; approvals are keyed by them, so each call is
    given an id of its own before anything is routed."""
    world, server, cfg = oa_world, oa_world.openai, thread_config
    a, b = world.marker + "-a", world.marker + "-b"
    server.add(
        calls(Call(GIST, gist_args(a, "a.md"), "dup"), Call(GIST, gist_args(b, "b.md"), "dup")),
        echo("-"),
    )
    graph = build_graph(checkpointer=InMemorySaver())
    _, [first] = await turn(graph, "publish both", cfg, world.ctx)
    _, [second] = await approve_and_resume(world, graph, cfg, first)
    assert second["approval_id"] != first["approval_id"] and second["arguments"]["content"] == b
    values, _ = await approve_and_resume(world, graph, cfg, second)
    assert world.gists(a) == 1 and world.gists(b) == 1
    ids = [m.tool_call_id for m in tool_results(values).values()]
    assert len(ids) == 2 and len(set(ids)) == 2 and "dup" in ids
