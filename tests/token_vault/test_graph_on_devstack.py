"""The whole path on the devstack: the graph asks, interrupts to connect, the user connects at the
provider, the resumed run answers from the local GitHub; then the stores are scanned for tokens.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3

import httpx
import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from auth.token_vault import get_token_vault
from devstack.identity.connected_accounts import connect_in_browser
from graph.agent import build_graph
from graph.context import Context

pytestmark = pytest.mark.server

ASK = {"messages": [("user", "show me popular repositories about AI")]}


@pytest.fixture(autouse=True)
def _leave_nobody_connected(devstack):
    """The devstack is shared by the whole session: leave no GitHub connection behind."""
    from devstack.identity.users import subject_for

    yield
    store = devstack.provider.extensions["connected_accounts"].store
    for email in ("alice@example.com", "bob@example.com"):
        store.delete(subject_for(email), connection="github")
    get_token_vault().clear()


def _sub(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def _tool_messages(out: dict) -> list[ToolMessage]:
    return [m for m in out["messages"] if isinstance(m, ToolMessage)]


async def test_connect_interrupt_then_real_results_and_no_token_anywhere(
    devstack, use_devstack, login_as, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    # Tokens of its own (the shared ones stay untouched), and no GitHub connection yet.
    tokens = login_as("alice")
    # authlib's own grants log issued tokens at DEBUG during that login (reported to the
    # provider's owner); what is scanned here is everything the run itself logs.
    caplog.clear()
    sub = _sub(tokens.access_token)
    devstack.provider.extensions["connected_accounts"].store.delete(sub, connection="github")
    get_token_vault().clear()
    ctx = Context(user_id=sub, user_email="alice@example.com", subject_token=tokens.access_token)
    cfg = {"configurable": {"thread_id": "tv-e2e"}}
    db = tmp_path / "checkpoints.sqlite"
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = build_graph(checkpointer=saver)
        out = await graph.ainvoke(ASK, cfg, context=ctx)
        [interrupt] = out["__interrupt__"]
        payload = interrupt.value
        assert payload["type"] == "connection_required" and payload["connection"] == "github"
        assert payload["connect_url"].startswith(devstack.issuer + "connected-accounts/connect")

        # A resume before connecting is only a nudge: the vault is asked again, still missing.
        out = await graph.ainvoke(Command(resume={"connected": True}), cfg, context=ctx)
        assert out["__interrupt__"][0].value["type"] == "connection_required"

        password = use_devstack.alice_password.get_secret_value()
        await connect_in_browser(
            payload["connect_url"],
            email="alice@example.com",
            password=password,
            github_login="alice",
            github_password=password,
        )
        out = await graph.ainvoke(Command(resume="connected"), cfg, context=ctx)
        assert "__interrupt__" not in out
        [result] = _tool_messages(out)
        found = json.loads(result.content)["repositories"]
        assert result.status == "success" and len(found) == 5
        assert isinstance(out["messages"][-1], AIMessage)
        assert found[0]["full_name"] in out["messages"][-1].content
        github_token = (
            await get_token_vault().get_token(user_id=sub, subject_token=tokens.access_token)
        ).access_token
        state = await graph.aget_state(cfg)

    secrets = [tokens.access_token, tokens.refresh_token, tokens.id_token, github_token]
    # Every byte the checkpointer wrote (the database and any write-ahead log), blobs included.
    rows = sqlite3.connect(db).execute("SELECT checkpoint, metadata FROM checkpoints").fetchall()
    stored = b"".join(bytes(part) for row in rows for part in row)
    stored += b"".join(p.read_bytes() for p in tmp_path.glob("checkpoints.sqlite*"))
    assert b"repositories" in stored  # the scan reads real checkpoint content
    for secret in secrets:
        assert secret and secret.encode() not in stored
        assert secret not in str(state.values)
        leaks = [(r.name, r.getMessage()[:300]) for r in caplog.records if secret in r.getMessage()]
        assert not leaks, leaks


async def test_github_rate_limit_reaches_the_user_as_a_plain_message(
    devstack, use_devstack, alice_tokens
) -> None:
    sub = _sub(alice_tokens.access_token)
    s = use_devstack
    password = s.alice_password.get_secret_value()
    vault = get_token_vault()
    vault.clear()
    await connect_in_browser(
        vault.connect_url("github", []),
        email="alice@example.com",
        password=password,
        github_login="alice",
        github_password=password,
    )
    admin = (s.devstack_github_client_id, s.devstack_github_client_secret.get_secret_value())
    ctx = Context(
        user_id=sub, user_email="alice@example.com", subject_token=alice_tokens.access_token
    )
    async with httpx.AsyncClient(base_url=devstack.github_url) as http:
        exhausted = await http.post("/_devstack/rate-limit/alice/exhaust", auth=admin)
        assert exhausted.status_code == 204
        try:
            graph = build_graph()
            out = await graph.ainvoke(ASK, {"configurable": {"thread_id": "tv-429"}}, context=ctx)
        finally:
            # Other tests share this devstack: give alice her searches back.
            reset = await http.post("/_devstack/rate-limit/alice/reset", auth=admin)
        assert reset.status_code == 204
    [result] = _tool_messages(out)
    assert result.status == "error"
    assert "rate limit is used up" in result.content and "resets at" in result.content
    assert "rate limit" in out["messages"][-1].content
