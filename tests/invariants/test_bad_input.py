"""Bad input gets a clear error and loses nothing: malformed tool calls from the model, gist file
names that can never be created, unicode and control characters in what the user is asked to
approve, huge messages. Nothing is pushed for an action that cannot run; nothing crashes."""

from __future__ import annotations

import unicodedata

import pytest
from langchain_core.messages import AIMessage
from langgraph.types import Command

from auth.ciba import BINDING_MESSAGE_MAX
from graph.resumer import WAKE, resume_when_approved
from tests.approvals.conftest import pending_interrupt, saved_graph, tool_results


def calls(*items: tuple[str, object, object]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[
            {"name": name, "args": args, "id": call_id, "type": "tool_call"}
            for name, args, call_id in items
        ],
    )


def gist(world, filename: str, content: str | None = None, description: str = "d") -> dict:
    return {"description": description, "content": content or world.marker, "filename": filename}


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "a/b.md", "", "   ", "x" * 300, ".."],
    ids=["traversal", "slash", "empty", "blank", "too-long", "dotdot"],
)
async def test_an_unusable_gist_is_refused_before_the_user_is_asked(
    world, scripted, tmp_path, thread_config, filename
) -> None:
    scripted.script = [calls(("create_public_gist", gist(world, filename), "call_bad"))]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke({"messages": [("user", "go")]}, thread_config, context=world.ctx)
    assert "__interrupt__" not in out
    [result] = tool_results(out)
    assert result.status == "error" and "file name" in result.content
    assert [r for r in world.ciba.requests(world.sub) if world.marker in str(r)] == []
    assert world.gists() == 0


@pytest.mark.parametrize(
    "args",
    [
        {"description": 1, "content": {"x": 1}},
        {"content": "only content"},
        {"description": "d", "content": "c", "filename": ["a.md"]},
    ],
    ids=["wrong-types", "missing", "list-filename"],
)
async def test_malformed_arguments_are_answered_and_nothing_is_pushed(
    world, scripted, tmp_path, thread_config, args
) -> None:
    scripted.script = [calls(("create_public_gist", args, "call_x"))]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke({"messages": [("user", "go")]}, thread_config, context=world.ctx)
    assert "__interrupt__" not in out
    [result] = tool_results(out)
    assert result.status == "error" and "Invalid arguments" in result.content
    assert [r for r in world.ciba.requests(world.sub) if "only content" in str(r)] == []
    assert isinstance(out["messages"][-1], AIMessage)


async def test_unicode_and_control_characters_make_a_valid_binding_and_a_clear_outcome(
    world, scripted, tmp_path, thread_config
) -> None:
    name = "r\u00e9sum\u00e9 \u202e\x07\x1b[31m {description} \U0001f4c4 \u0645\u0644\u0641.md"
    scripted.script = [
        calls(("create_public_gist", gist(world, name, description="{tool}\x00"), "call_u"))
    ]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke({"messages": [("user", "go")]}, thread_config, context=world.ctx)
        payload = pending_interrupt(out)
        message = payload["binding_message"]
        assert len(message) <= BINDING_MESSAGE_MAX and message.isascii()
        assert all(unicodedata.category(c)[0] != "C" for c in message)
        # Shown, not dropped: each character outside Auth0's set as its code point.
        assert message.startswith("Create public gist rU+00E9sumU+00E9 U+202E")
        record = await world.record(payload["approval_id"])
        world.approve(record)
        out = await resume_when_approved(graph, thread_config, context=world.ctx, timeout=10)
    [result] = tool_results(out)
    # Either GitHub took the name, or the user is told plainly why not; never a crash.
    assert result.status in ("success", "error") and "Traceback" not in result.content
    assert world.gists() == (1 if result.status == "success" else 0)


async def test_a_huge_message_gets_an_answer_and_the_thread_goes_on(
    world, tmp_path, thread_config
) -> None:
    huge = "please help " + "\u00e9\x00\u202e" * 300_000
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke({"messages": [("user", huge)]}, thread_config, context=world.ctx)
        assert isinstance(out["messages"][-1], AIMessage)
        out = await graph.ainvoke(world.ask(), thread_config, context=world.ctx)
        pending_interrupt(out)
        out = await graph.ainvoke(Command(resume=WAKE), thread_config, context=world.ctx)
        assert out["messages"][0].content == huge  # nothing lost
