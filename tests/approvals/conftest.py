"""Fixtures for the approval-node tests: the session devstack's CIBA provider, alice connected to
the local GitHub with the `gist` scope, a ledger of the test's own, and counters at both ends
(gists at the local GitHub, `/bc-authorize` requests at the provider). Nothing here is autouse:
the ledger and CIBA-client tests in this folder do not need a devstack."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

import auth.credentials
from auth.approvals import close_all, get_ledger
from auth.approvals_ledger import ApprovalRecord, ApprovalsLedger
from auth.token_vault import get_token_vault
from devstack.identity.connected_accounts import connect_in_browser
from devstack.serving import serving
from graph.agent import build_graph
from graph.context import Context
from graph.resumer import set_resumer
from settings import Settings, get_settings

TEST_INTERVAL = 1  # the provider's polling interval in these tests (CIBA's default is 5 s)


def subject_of(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


@dataclass
class World:
    """One test's view of the devstack and the agent's stores."""

    stack: Any
    settings: Settings
    sub: str
    ctx: Context
    marker: str  # unique text in this test's gists

    @property
    def ciba(self) -> Any:
        return self.stack.provider.extensions["ciba"]

    async def ledger(self) -> ApprovalsLedger:
        return await get_ledger()

    def ask(self, filename: str | None = None, marker: str | None = None) -> dict[str, Any]:
        name = filename or f"notes-{uuid.uuid4().hex[:6]}.md"
        return {
            "messages": [
                (
                    "user",
                    f'create a public gist named {name} with content "{marker or self.marker}"',
                )
            ]
        }

    def gists(self, marker: str | None = None) -> int:
        """Gists at the local GitHub whose file content carries the marker."""
        store = self.stack._services["github"].app.state.store
        needle = marker or self.marker
        rows = store._run("SELECT body FROM gists")
        return sum(
            1
            for (body,) in rows
            if any(f.get("content") == needle for f in json.loads(body)["files"].values())
        )

    def pushes(self, digest: str) -> list[Any]:
        """The provider's CIBA requests for this action (`/bc-authorize` calls that succeeded)."""
        return [
            r
            for r in self.ciba.requests(self.sub)
            if (r.authorization_details or [{}])[0].get("action_digest") == digest
        ]

    async def record(self, approval_id: str) -> ApprovalRecord:
        found = await (await get_ledger()).get(approval_id)
        assert found is not None
        return found

    def polls(self, record: ApprovalRecord) -> int:
        return self.ciba.stats(record.auth_req_id)["polls"]

    def approve(self, record: ApprovalRecord, yes: bool = True) -> None:
        self.ciba.decide(record.auth_req_id, self.sub, yes)


@pytest.fixture
async def world(devstack, alice_tokens, tmp_path) -> AsyncIterator[World]:
    """Alice, connected to GitHub (`gist`), a ledger of this test's own, poll delivery."""
    ciba = devstack.provider.extensions["ciba"]
    interval, delivery = ciba.interval, ciba.delivery(devstack.settings.agent_client_id)
    ciba.interval = TEST_INTERVAL
    changes = {
        **devstack.overrides,
        "approvals_db": str(tmp_path / "approvals.sqlite3"),
        "ciba_delivery_mode": "poll",
    }
    sub = subject_of(alice_tokens.access_token)
    with get_settings.override(**changes) as settings:
        vault = get_token_vault()
        vault.clear()
        password = settings.alice_password.get_secret_value()
        await connect_alice_to_github(password)
        ctx = Context(
            user_id=sub, user_email="alice@example.com", subject_token=alice_tokens.access_token
        )
        try:
            yield World(devstack, settings, sub, ctx, f"warrant-test-{uuid.uuid4().hex}")
        finally:
            ciba.interval = interval
            ciba.set_delivery(devstack.settings.agent_client_id, *delivery)
            devstack.provider.extensions["connected_accounts"].store.delete(
                sub, connection="github"
            )
            vault.clear()
            set_resumer(None)
            auth.credentials.credential_store().clear()
            await close_all()


async def connect_alice_to_github(password: str) -> None:
    """Alice connects her GitHub account (`gist` scope) at Token Vault's connect URL, as she
    would in a browser."""
    await connect_in_browser(
        get_token_vault().connect_url("github", ["gist"]),
        email="alice@example.com",
        password=password,
        github_login="alice",
        github_password=password,
    )


@contextlib.asynccontextmanager
async def saved_graph(path) -> AsyncIterator[Any]:
    """The agent graph on a SQLite checkpoint file (a fresh 'process' each time it is opened)."""
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield build_graph(checkpointer=saver)


def pending_interrupt(out: dict[str, Any]) -> dict[str, Any]:
    [item] = out["__interrupt__"]
    assert item.value["type"] == "approval_pending", item.value
    return item.value


def tool_results(out: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in out["messages"] if isinstance(m, ToolMessage)]


async def until_due(record: ApprovalRecord) -> None:
    """Sleep until the provider's interval for this request has elapsed."""
    import time

    wait = (record.next_poll_at or 0) - time.time()
    if wait > 0:
        await asyncio.sleep(wait + 0.05)


# Serve `app` on 127.0.0.1:0 inside the running event loop (the graph's loop).
serve_here = serving


@pytest.fixture
def thread_config() -> Iterator[dict[str, Any]]:
    yield {"configurable": {"thread_id": f"approvals-{uuid.uuid4().hex[:8]}"}}
