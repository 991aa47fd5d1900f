"""A user tool that declared an FGA relation: only objects the user may see reach the model."""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from auth.fga.client import TupleKey
from graph.agent import build_graph
from graph.context import Context
from settings import get_settings
from tests.graph.scripted import ScriptedModel
from tools.base import RelationRequirement, declare

ALICE = Context(user_id="auth0|alice", user_email="alice@example.com")


@tool
def find_tickets(text: str) -> list:
    """Find support tickets about `text`."""
    return [
        Document("alice's ticket: printer on fire", metadata={"id": "t1"}),
        Document("bob's ticket: salary question", metadata={"id": "t2"}),
        {"id": "t3", "summary": "shared ticket: VPN down"},
    ]


declare(find_tickets, relation=RelationRequirement("can_view", "doc"))


@tool
def find_untagged(text: str) -> list:
    """Find things that carry no id."""
    return [Document("secret without an id")]


declare(find_untagged, relation=RelationRequirement("can_view", "doc"))


@tool
def find_text(text: str) -> str:
    """Returns text, which cannot be checked."""
    return "bob's salary is 1,000,000"


declare(find_text, relation=RelationRequirement("can_view", "doc"))


@pytest.fixture
async def fga_world(tmp_path, monkeypatch):
    from auth.fga.local import LocalFGA
    from vectorstore.access_model import document_model

    with get_settings.override(data_dir=tmp_path, fga_backend="local") as settings:
        fga = LocalFGA.open(settings.path("fga.sqlite3"))
        await fga.write_model(document_model())
        await fga.write(
            [
                TupleKey("user:alice@example.com", "owner", "doc:t1"),
                TupleKey("user:bob@example.com", "owner", "doc:t2"),
                TupleKey("user:alice@example.com", "viewer", "doc:t3"),
            ]
        )
        await fga.close()
        yield settings


def _ask(name: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": {"text": "x"}, "id": "c1"}])


async def _run(name: str, tools: list, monkeypatch) -> ToolMessage:
    model = ScriptedModel()
    model.script = [_ask(name)]
    graph = build_graph(checkpointer=InMemorySaver(), tools=tools, model=model)
    out = await graph.ainvoke(
        {"messages": [("user", "go")]}, {"configurable": {"thread_id": name}}, context=ALICE
    )
    [result] = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert "salary" not in str(out["messages"])
    return result


async def test_only_objects_the_user_may_see_reach_the_model(fga_world, monkeypatch) -> None:
    result = await _run("find_tickets", [find_tickets], monkeypatch)
    shown = json.loads(result.content)
    assert [item["id"] for item in shown] == ["t1", "t3"]
    assert result.status == "success"


async def test_uncheckable_output_fails_closed(fga_world, monkeypatch) -> None:
    result = await _run("find_untagged", [find_untagged], monkeypatch)
    assert result.status == "error" and "without an id" in result.content
    result = await _run("find_text", [find_text], monkeypatch)
    assert result.status == "error" and "no list of objects" in result.content


async def test_an_fga_failure_shows_nothing(fga_world, monkeypatch) -> None:
    def broken(settings=None):
        raise ValueError("no store id")

    monkeypatch.setattr("auth.fga.factory.make_fga_client", broken)
    result = await _run("find_tickets", [find_tickets], monkeypatch)
    assert result.status == "error" and "permission check failed (ValueError)" in result.content
