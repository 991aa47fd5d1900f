"""`openai:<model>` end to end through langchain-openai and real HTTP, against the devstack:
tool calls, the connection interrupt, the approval interrupt and resume, document search, the
final answer; streamed (server-sent events) and not."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graph.agent import build_graph
from tests.approvals.conftest import until_due
from tests.models.conftest import API_KEY, connect_github, disconnect_github, turn
from tests.models.openai_server import call, last_tool_results, say
from vectorstore.demo import PRIVATE_FACT


def echo(prefix: str):
    """A scripted reply that quotes the tool results the model was sent."""
    return lambda body: say(prefix + " " + " | ".join(last_tool_results(body)))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_whole_conversation_on_the_openai_wire(with_documents, thread_config, stream):
    world = with_documents
    server = world.openai
    graph = build_graph(checkpointer=InMemorySaver())
    cfg, ctx = thread_config, world.ctx

    # 1. GitHub search: not connected -> connection interrupt -> connect -> resume -> answer
    await disconnect_github(world)
    server.add(call("search_github_repositories", {"query": "langgraph"}), echo("Found:"))
    values, interrupts = await turn(graph, "find langgraph repos", cfg, ctx, stream=stream)
    [pending] = interrupts
    assert pending["type"] == "connection_required" and pending["connection"] == "github"
    assert pending["tool"] == "search_github_repositories"
    await connect_github(world, ["gist"])
    values, interrupts = await turn(graph, Command(resume="connected"), cfg, ctx, stream=stream)
    assert interrupts == []
    result = next(m for m in values["messages"] if isinstance(m, ToolMessage))
    assert result.status == "success" and json.loads(result.content)["query"] == "langgraph"
    assert values["messages"][-1].content.startswith("Found: {")

    # 2. A public Gist: approval interrupt -> approve on the provider -> resume -> the URL
    marker = world.marker
    server.add(
        call("create_public_gist", {"description": "notes", "content": marker, "filename": "n.md"}),
        echo("Published:"),
    )
    values, interrupts = await turn(graph, "publish my notes as a gist", cfg, ctx, stream=stream)
    [pending] = interrupts
    assert pending["type"] == "approval_pending" and pending["tool"] == "create_public_gist"
    assert world.gists() == 0
    record = await world.record(pending["approval_id"])
    world.approve(record)
    await until_due(record)
    values, interrupts = await turn(graph, Command(resume={"wake": True}), cfg, ctx, stream=stream)
    assert interrupts == [] and world.gists() == 1
    assert "/gist" in values["messages"][-1].content or "gist" in values["messages"][-1].content

    # 3. Internal documents: FGA-filtered passages reach the model, the answer quotes them
    server.add(call("search_internal_documents", {"question": "Heron budget"}), echo("Docs:"))
    values, interrupts = await turn(graph, "what is the Heron budget?", cfg, ctx, stream=stream)
    assert interrupts == [] and PRIVATE_FACT in values["messages"][-1].content

    # what went over the wire
    assert server.streamed == [stream] * len(server.requests)
    assert len(server.requests) == 6
    assert server.bound_tools(0) == [
        "who_am_i",
        "search_github_repositories",
        "create_public_gist",
        "search_internal_documents",
    ]
    assert all(h.get("authorization") == f"Bearer {API_KEY}" for h in server.headers)
    # no user token, vault token or approval token ever reaches the model
    assert world.ctx.subject_token not in server.raw()
    assert isinstance(values["messages"][-1], AIMessage)
