"""The `tools` node with the real Token Vault: connect interrupts, resumes, failures, no leaks."""

from __future__ import annotations

import logging

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

import auth.credentials
from graph.agent import build_graph
from graph.context import Context
from tests.graph.conftest import CANARY_SUBJECT_TOKEN

ASK = {"messages": [("user", "show me popular repositories about AI")]}


def _ctx(token: str | None = CANARY_SUBJECT_TOKEN) -> Context:
    return Context(user_id="auth0|alice", user_email="alice@example.com", subject_token=token)


def _cfg(thread: str, **configurable) -> dict:
    return {"configurable": {"thread_id": thread, **configurable}}


def _interrupt(out: dict) -> dict:
    [item] = out["__interrupt__"]
    return item.value


async def test_missing_connection_interrupts_and_a_resume_is_only_a_nudge(provider) -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke(ASK, _cfg("c1"), context=_ctx())
    payload = _interrupt(out)
    assert payload["type"] == "connection_required"
    assert payload["connection"] == "github" and payload["scopes"] == []
    assert payload["connect_url"].startswith(provider.url + "/connected-accounts/connect?")
    assert "connection=github" in payload["connect_url"]
    assert provider.exchanges == 1 and provider.subject_tokens == [CANARY_SUBJECT_TOKEN]

    # A resume claiming success changes nothing while the provider says "not connected".
    out = await graph.ainvoke(Command(resume={"connected": True}), _cfg("c1"), context=_ctx())
    assert _interrupt(out)["type"] == "connection_required"
    assert provider.exchanges > 1  # the vault was asked again
    assert not any(isinstance(m, ToolMessage) for m in out["messages"])

    provider.connected = True
    out = await graph.ainvoke(Command(resume="done"), _cfg("c1"), context=_ctx())
    assert "__interrupt__" not in out
    [result] = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert result.status == "success" and '"repositories"' in result.content
    answer = out["messages"][-1]
    assert isinstance(answer, AIMessage) and "Top 5 GitHub repositories for 'AI'" in answer.content
    assert provider.github_token not in str(out["messages"])


async def test_cancelling_the_connect_interrupt(provider) -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    await graph.ainvoke(ASK, _cfg("c2"), context=_ctx())
    out = await graph.ainvoke(Command(resume="cancel"), _cfg("c2"), context=_ctx())
    [result] = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert result.status == "error" and "did nothing (cancelled)" in result.content
    assert "not connected" in out["messages"][-1].content


async def test_provider_down_is_a_plain_message(provider) -> None:
    provider.down = True
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke(ASK, _cfg("c3"), context=_ctx())
    assert "__interrupt__" not in out
    [result] = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert "The identity provider is unavailable right now (HTTP 503)" in result.content
    assert "nothing was done" in out["messages"][-1].content


async def test_without_the_users_token_it_asks_to_log_in(provider) -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke(ASK, _cfg("c4"), context=_ctx(token=None))
    [result] = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert "log in again" in result.content and provider.exchanges == 0


async def test_a_context_token_for_another_user_is_not_used(provider) -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    await graph.ainvoke({"messages": [("user", "hi")]}, _cfg("c5"), context=_ctx())
    # A caller-less run (a resumer) carrying someone's token: it is not alice's, so not used.
    stray = Context(subject_token="someone-elses-token")
    out = await graph.ainvoke(ASK, _cfg("c5"), context=stray)
    assert provider.exchanges == 0
    assert "log in again" in out["messages"][-2].content


async def test_server_path_takes_the_token_from_the_credential_store(provider) -> None:
    import time

    provider.connected = True
    auth.credentials.put("auth0|alice", "server-side-access-token", time.time() + 60)
    user = {"identity": "auth0|alice", "email": "alice@example.com"}
    graph = build_graph(checkpointer=InMemorySaver())
    out = await graph.ainvoke(ASK, _cfg("c6", langgraph_auth_user=user))
    assert provider.subject_tokens == ["server-side-access-token"]
    assert "Top 5 GitHub repositories" in out["messages"][-1].content


async def test_no_token_in_checkpoints_or_logs(provider, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "leak.sqlite"
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        graph = build_graph(checkpointer=saver)
        out = await graph.ainvoke(ASK, _cfg("leak"), context=_ctx())
        assert _interrupt(out)["type"] == "connection_required"
        provider.connected = True
        out = await graph.ainvoke(Command(resume="ok"), _cfg("leak"), context=_ctx())
        assert "Top 5 GitHub repositories" in out["messages"][-1].content
        await graph.ainvoke({"messages": [("user", "who am i")]}, _cfg("leak"), context=_ctx())
    files = [p for p in tmp_path.iterdir() if p.name.startswith("leak.sqlite")]
    assert files
    secrets = [CANARY_SUBJECT_TOKEN, provider.github_token]
    for file in files:
        data = file.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"a token reached {file.name}"
    assert b"auth0|alice" in path.read_bytes()  # the scan reads real checkpoint data
    for secret in secrets:
        assert secret not in caplog.text
    assert "token vault" in caplog.text  # logs were captured


async def test_a_tool_echoing_its_tokens_is_redacted(provider, monkeypatch) -> None:
    from langchain_core.tools import tool

    from graph.nodes.tools import execute_tool_call
    from tools.base import ConnectionRequirement, current_credentials, declare

    @tool
    async def leaky(text: str) -> str:
        """Echo the credentials it was given (a buggy tool)."""
        creds = current_credentials()
        return f"{text}: {creds.connection_token('github')} / {creds.approval_token}"

    declare(leaky, connection=ConnectionRequirement("github"))
    provider.connected = True
    call = {"name": "leaky", "args": {"text": "hi"}, "id": "l1", "type": "tool_call"}

    class _Runtime:
        context = _ctx()

    user = {"sub": "auth0|alice", "email": "alice@example.com"}
    message = await execute_tool_call(leaky, call, user, _Runtime(), approval_token="approval-xyz")
    assert message.content == "hi: [redacted] / [redacted]"
    assert provider.github_token not in str(message) and "approval-xyz" not in str(message)
