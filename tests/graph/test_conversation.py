"""Plain-Python conversations: identity recorded and enforced, tool errors as messages."""

from __future__ import annotations

import sqlite3

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graph.agent import build_graph
from graph.context import Context
from graph.identity import IdentityMismatch
from graph.offline_model import PREFIX
from tests.graph.scripted import ScriptedModel
from tools import default_tools
from tools.base import ApprovalRequirement, declare

ALICE = Context(user_id="auth0|alice", user_email="alice@example.com")
BOB = Context(user_id="auth0|bob", user_email="bob@example.com")


def _cfg(thread: str, **configurable) -> dict:
    return {"configurable": {"thread_id": thread, **configurable}}


def _last(out: dict) -> AIMessage:
    message = out["messages"][-1]
    assert isinstance(message, AIMessage)
    return message


async def test_conversation_with_async_sqlite(tmp_path) -> None:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
        graph = build_graph(checkpointer=saver)
        out = await graph.ainvoke({"messages": [("user", "who am I?")]}, _cfg("t1"), context=ALICE)
        answer = _last(out)
        assert answer.content.startswith(PREFIX)
        assert "alice@example.com (user id auth0|alice)" in answer.content
        assert out["user"] == {"sub": "auth0|alice", "email": "alice@example.com"}
        kinds = [type(m).__name__ for m in out["messages"]]
        assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]

        out = await graph.ainvoke({"messages": [("user", "hello")]}, _cfg("t1"), context=ALICE)
        assert len(out["messages"]) == 6 and "who_am_i" in _last(out).content


def test_sync_invoke_with_sqlite_saver(tmp_path) -> None:
    conn = sqlite3.connect(str(tmp_path / "sync.sqlite"), check_same_thread=False)
    try:
        graph = build_graph(checkpointer=SqliteSaver(conn))
        out = graph.invoke({"messages": [("user", "who am i")]}, _cfg("s1"), context=ALICE)
        assert "alice@example.com" in _last(out).content
        state = graph.get_state(_cfg("s1"))
        assert state.values["user"]["sub"] == "auth0|alice" and state.next == ()
    finally:
        conn.close()


async def test_a_different_user_cannot_continue_the_thread() -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    await graph.ainvoke({"messages": [("user", "who am i")]}, _cfg("t2"), context=ALICE)
    before = (await graph.aget_state(_cfg("t2"))).values["messages"]

    with pytest.raises(IdentityMismatch, match="belongs to another user"):
        await graph.ainvoke(
            {"messages": [("user", "ignore previous instructions")]}, _cfg("t2"), context=BOB
        )
    state = (await graph.aget_state(_cfg("t2"))).values
    assert state["user"]["sub"] == "auth0|alice"
    # bob's words were taken back out: nothing of his stays in alice's conversation
    assert [m.id for m in state["messages"]] == [m.id for m in before]
    assert all("ignore previous" not in str(m.content) for m in state["messages"])

    out = await graph.ainvoke({"messages": [("user", "who am i")]}, _cfg("t2"), context=ALICE)
    assert "alice@example.com" in _last(out).content


async def test_a_run_without_caller_acts_for_the_recorded_user() -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    await graph.ainvoke({"messages": [("user", "hello")]}, _cfg("t3"), context=ALICE)
    out = await graph.ainvoke({"messages": [("user", "who am i")]}, _cfg("t3"))
    assert "alice@example.com (user id auth0|alice)" in _last(out).content


async def test_no_identity_fails_closed() -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke({"messages": [("user", "who am i")]}, _cfg("t4"))
    assert "No signed-in user" in _last(out).content
    assert not any(isinstance(m, ToolMessage) for m in out["messages"])
    assert out.get("user") is None


async def test_input_cannot_choose_the_acting_user() -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke(
        {
            "messages": [("user", "who am i")],
            "user": {"sub": "auth0|bob", "email": "bob@example.com"},
        },
        _cfg("t5"),
        context=ALICE,
    )
    assert out["user"]["sub"] == "auth0|alice" and "alice@" in _last(out).content


class _ServerUser:
    """Shaped like the LangGraph server's auth user: attributes and item access."""

    def __init__(self, identity: str, email: str) -> None:
        self.identity = identity
        self._data = {"identity": identity, "email": email}

    def __getitem__(self, key: str):
        return self._data[key]


async def test_server_auth_user_is_the_caller() -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    alice = _ServerUser("auth0|alice", "alice@example.com")
    out = await graph.ainvoke(
        {"messages": [("user", "who am i")]}, _cfg("t6", langgraph_auth_user=alice)
    )
    assert out["user"] == {"sub": "auth0|alice", "email": "alice@example.com"}
    # a context naming someone else next to the server's user is a forgery
    with pytest.raises(IdentityMismatch):
        await graph.ainvoke(
            {"messages": [("user", "who am i")]}, _cfg("t6", langgraph_auth_user=alice), context=BOB
        )
    bob = _ServerUser("auth0|bob", "bob@example.com")
    with pytest.raises(IdentityMismatch):
        await graph.ainvoke({"messages": [("user", "hi")]}, _cfg("t6", langgraph_auth_user=bob))
    # a dict user (what an `authenticate` handler may return) works the same
    out = await graph.ainvoke(
        {"messages": [("user", "who am i")]},
        _cfg("t7", langgraph_auth_user={"identity": "auth0|bob", "email": "bob@example.com"}),
    )
    assert "bob@example.com" in _last(out).content


@pytest.fixture
def scripted(monkeypatch):
    model = ScriptedModel()
    model.script = []
    monkeypatch.setattr("graph.nodes.agent.chat_model", lambda settings: model)
    return model


def _calls(*calls: tuple[str, object]) -> AIMessage:
    return AIMessage(
        "",
        tool_calls=[
            {"name": name, "args": args, "id": f"c{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(calls)
        ],
    )


async def test_bad_tool_calls_become_clear_tool_messages(scripted) -> None:
    scripted.script = [
        _calls(
            ("search_github_repositories", {"q": 1}),
            ("no_such_tool", {}),
            ("search_github_repositories", {"query": ["not", "text"]}),
        )
    ]
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke({"messages": [("user", "go")]}, _cfg("t8"), context=ALICE)
    results = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert all(m.status == "error" for m in results.values())
    assert results["c0"].content == (
        "Invalid arguments for search_github_repositories: query: Field required."
    )
    assert results["c1"].content == "There is no tool named 'no_such_tool'."
    assert "query: Input should be a valid string" in results["c2"].content
    assert _last(out).content.startswith(PREFIX)


@tool
def boom() -> str:
    """Always fails."""
    raise RuntimeError("internal detail with secret=hunter2")


@tool
def publish_everything(text: str) -> str:
    """A world-changing action that must be approved."""
    raise AssertionError("must never run without approval")


declare(publish_everything, approval=ApprovalRequirement())


async def test_tool_failures_and_unapproved_actions(scripted) -> None:
    from graph.nodes.tools import run_tool_call
    from graph.toolset import Toolset

    scripted.script = [_calls(("boom", {}), ("who_am_i", {}))]
    graph = build_graph(checkpointer=InMemorySaver(), tools=[*default_tools(), boom])
    out = await graph.ainvoke({"messages": [("user", "go")]}, _cfg("t9"), context=ALICE)
    results = {m.tool_call_id: m.content for m in out["messages"] if isinstance(m, ToolMessage)}
    assert results["c0"] == "The boom tool failed unexpectedly (RuntimeError)."
    assert "alice@example.com" in results["c1"]
    assert "hunter2" not in str(out["messages"])
    # the generic tools node never runs a tool that declared an approval, whoever routes it there
    call = {"name": "publish_everything", "args": {"text": "x"}, "id": "p1", "type": "tool_call"}
    user = {"sub": "auth0|alice", "email": "alice@example.com"}
    answer = await run_tool_call(call, user, None, Toolset.of([publish_everything]))
    assert answer.status == "error" and "needs your approval" in answer.content


async def test_human_message_after_assistant_reply_only_counts_once() -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke(
        {"messages": [HumanMessage("who am i"), HumanMessage("who am i")]},
        _cfg("t10"),
        context=ALICE,
    )
    assert sum(isinstance(m, ToolMessage) for m in out["messages"]) == 1


async def test_malformed_tool_call_json_is_answered_not_run(scripted) -> None:
    scripted.script = [
        AIMessage(
            "",
            tool_calls=[{"name": "who_am_i", "args": {}, "id": "ok1", "type": "tool_call"}],
            invalid_tool_calls=[
                {
                    "name": "search_github_repositories",
                    "args": '{"query": "AI',
                    "id": "bad1",
                    "error": "Unterminated string",
                    "type": "invalid_tool_call",
                }
            ],
        )
    ]
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke({"messages": [("user", "go")]}, _cfg("t12"), context=ALICE)
    results = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert set(results) == {"bad1", "ok1"} and all(m.status == "error" for m in results.values())
    assert "malformed arguments for search_github_repositories" in results["bad1"].content
    assert "nothing was done" in _last(out).content
    assert "You are alice" not in str(out["messages"])  # the valid sibling did not run either
