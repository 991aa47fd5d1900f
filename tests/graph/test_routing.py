"""Routing: each pending tool call goes to the node that may answer it, one at a time."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from graph.agent import build_graph
from graph.context import Context
from graph.routing import bindable_tools, node_for, pending_tool_calls
from graph.toolset import Toolset, ToolsetError
from tests.graph.scripted import ScriptedModel
from tools import default_tools
from tools.base import ApprovalRequirement, RelationRequirement, declare
from tools.documents import DocumentSearch

ALICE = Context(user_id="auth0|alice", user_email="alice@example.com")


def _ai(*names: str) -> AIMessage:
    return AIMessage(
        "",
        tool_calls=[
            {"name": n, "args": {}, "id": f"c{i}", "type": "tool_call"} for i, n in enumerate(names)
        ],
    )


def test_pending_tool_calls() -> None:
    assert pending_tool_calls([HumanMessage("hi")]) == []
    ai = _ai("who_am_i", "who_am_i")
    assert [c["id"] for c in pending_tool_calls([ai])] == ["c0", "c1"]
    answered = [ai, ToolMessage("x", tool_call_id="c0")]
    assert [c["id"] for c in pending_tool_calls(answered)] == ["c1"]
    assert pending_tool_calls([*answered, ToolMessage("y", tool_call_id="c1")]) == []
    assert pending_tool_calls([ai, AIMessage("done")]) == []


@tool
def publish_note(text: str) -> str:
    """Publish a note to the world (needs the user's approval)."""
    return f"published {text}"


declare(publish_note, approval=ApprovalRequirement(binding_message="Publish {text}"))


WITH_PUBLISH = Toolset.of([*default_tools(), publish_note])


@tool("search_internal_documents")
def impostor_search(question: str) -> str:
    """A user's own tool that happens to share the built-in search's name."""
    return "mine"


declare(impostor_search, relation=RelationRequirement("can_view", "doc"))


def test_node_for() -> None:
    def call(name: str) -> dict:
        return {"name": name, "args": {}, "id": "x", "type": "tool_call"}

    assert node_for(call("publish_note"), WITH_PUBLISH) == "approval"
    assert node_for(call("publish_note")) == "tools"  # not in the default set: "no such tool"
    assert node_for(call("search_internal_documents"), WITH_PUBLISH) == "retrieve"
    assert node_for(call("search_github_repositories"), WITH_PUBLISH) == "tools"
    assert node_for(call("who_am_i"), WITH_PUBLISH) == "tools"
    assert node_for(call("nope"), WITH_PUBLISH) == "tools"
    # only Warrant's own document search goes to `retrieve`, never a namesake
    assert node_for(call("search_internal_documents"), Toolset.of([impostor_search])) == "tools"


def test_toolset_rejects_what_is_not_a_tool_set() -> None:
    with pytest.raises(ToolsetError, match="not a LangChain tool"):
        Toolset.of([lambda: 1])
    with pytest.raises(ToolsetError, match="two tools are named 'publish_note'"):
        Toolset.of([publish_note, publish_note])
    with pytest.raises(ToolsetError, match="must be a list"):
        Toolset.of(publish_note)
    with pytest.raises(ToolsetError):
        build_graph(tools=["who_am_i"])


@pytest.fixture
def scripted(monkeypatch):
    model = ScriptedModel()
    model.script = []
    monkeypatch.setattr("graph.nodes.agent.chat_model", lambda settings: model)
    return model


async def test_each_graph_binds_and_routes_its_own_tools(scripted, monkeypatch) -> None:
    assert "publish_note" in [t.name for t in bindable_tools(WITH_PUBLISH)]
    assert "publish_note" not in [t.name for t in bindable_tools()]
    seen: list[str] = []

    async def approval(state, config, runtime, *, toolset):
        from graph.identity import acting_user

        user = acting_user(state, config, runtime)
        calls = toolset.pending_calls_for(state, "approval")
        seen.extend(c["id"] for c in calls)
        return {
            "messages": [ToolMessage(f"approved for {user['email']}", tool_call_id=calls[0]["id"])]
        }

    monkeypatch.setattr("graph.agent.approval", approval)
    graph = build_graph(checkpointer=InMemorySaver(), tools=WITH_PUBLISH)

    scripted.script = [_ai("who_am_i", "publish_note", "who_am_i")]
    visited: list[str] = []
    async for update in graph.astream(
        {"messages": [("user", "go")]},
        {"configurable": {"thread_id": "r1"}},
        context=ALICE,
        stream_mode="updates",
    ):
        visited.extend(update)
    assert visited == ["identity", "agent", "tools", "approval", "tools", "agent"]
    assert seen == ["c1"]
    state = await graph.aget_state({"configurable": {"thread_id": "r1"}})
    results = {m.tool_call_id: m.content for m in state.values["messages"] if m.type == "tool"}
    assert results["c1"] == "approved for alice@example.com"
    assert set(results) == {"c0", "c1", "c2"}

    # the default graph, in the same process, does not know `publish_note`
    scripted.script = [_ai("publish_note")]
    default = build_graph(checkpointer=InMemorySaver())
    out = await default.ainvoke(
        {"messages": [("user", "go")]}, {"configurable": {"thread_id": "r1b"}}, context=ALICE
    )
    [answer] = [m for m in out["messages"] if m.type == "tool"]
    assert answer.content == "There is no tool named 'publish_note'." and seen == ["c1"]


async def test_document_search_goes_to_the_retrieve_node(monkeypatch) -> None:
    asked: list[tuple[str, str]] = []

    async def fake_search(question, user, **kwargs):
        asked.append((question, user))
        return DocumentSearch(question, error="the test store is empty.")

    monkeypatch.setattr("graph.nodes.retrieve.search_documents", fake_search)
    graph = build_graph(checkpointer=InMemorySaver())
    visited: list[str] = []
    async for update in graph.astream(
        {"messages": [("user", "what do my documents say about the Heron launch?")]},
        {"configurable": {"thread_id": "r2"}},
        context=ALICE,
        stream_mode="updates",
    ):
        visited.extend(update)
    assert visited == ["identity", "agent", "retrieve", "agent"]
    assert asked == [("the Heron launch", "alice@example.com")]
