"""Routing: each pending tool call goes to the node that may answer it, one at a time."""

from __future__ import annotations

import sys
import types

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

import tools as registry_module
from graph.agent import build_graph
from graph.context import Context
from graph.routing import bindable_tools, node_for, pending_tool_calls
from tests.graph.scripted import ScriptedModel
from tools.base import ApprovalRequirement, declare
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


@pytest.fixture
def with_publish(monkeypatch):
    extra = dict(registry_module.registry())
    extra["publish_note"] = publish_note
    monkeypatch.setattr(registry_module, "_registry", extra)


def test_node_for(with_publish) -> None:
    def call(name: str) -> dict:
        return {"name": name, "args": {}, "id": "x", "type": "tool_call"}

    both = {"approval", "retrieve"}
    assert node_for(call("publish_note"), both) == "approval"
    assert node_for(call("publish_note"), set()) == "tools"  # which refuses to run it
    assert node_for(call("search_internal_documents"), both) == "retrieve"
    assert node_for(call("search_internal_documents"), set()) == "tools"
    assert node_for(call("search_github_repositories"), both) == "tools"
    assert node_for(call("who_am_i"), both) == "tools"
    assert node_for(call("nope"), both) == "tools"


@pytest.fixture
def scripted(monkeypatch):
    model = ScriptedModel()
    model.script = []
    monkeypatch.setattr("graph.nodes.agent.chat_model", lambda settings: model)
    return model


async def test_contributed_approval_node_gets_its_calls(with_publish, scripted, monkeypatch):
    seen: list[str] = []

    async def approval(state, config, runtime):
        from graph.identity import acting_user
        from graph.routing import pending_calls_for

        user = acting_user(state, config, runtime)
        calls = pending_calls_for(state, "approval")
        seen.extend(c["id"] for c in calls)
        return {
            "messages": [ToolMessage(f"approved for {user['email']}", tool_call_id=calls[0]["id"])]
        }

    module = types.ModuleType("graph.nodes.approval")
    module.approval = approval
    monkeypatch.setitem(sys.modules, "graph.nodes.approval", module)
    assert "publish_note" in [t.name for t in bindable_tools()]

    scripted.script = [_ai("who_am_i", "publish_note", "who_am_i")]
    graph = build_graph(checkpointer=InMemorySaver())
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


def test_approval_tools_are_not_bound_without_an_approval_node(with_publish, monkeypatch):
    monkeypatch.setattr("graph.routing.available_nodes", lambda: frozenset())
    assert "publish_note" not in [t.name for t in bindable_tools()]


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
