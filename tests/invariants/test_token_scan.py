"""No token anywhere: a whole conversation (a Token Vault GitHub search, a document search,
then a CIBA-approved Gist woken by a real ping) with every logger at DEBUG, then a scan of
everything it left: log records and their tracebacks, outputs, interrupts, tool messages, the
SQLite checkpoint and ledger files, the Chroma folder, and what `warrant approvals` and
`warrant whoami` print."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from langchain_core.messages import ToolMessage
from starlette.applications import Starlette
from typer.testing import CliRunner

import auth.credentials
from auth.approvals import notification_token
from auth.approvals_ledger import ApprovalStatus
from auth.ciba import ApprovalGranted, CIBAClient
from auth.login import TokenFile, TokenSet
from auth.token_vault import get_token_vault
from cli.main import app
from graph.callbacks import CALLBACK_PATH, routes
from graph.resumer import GraphResumer, set_resumer
from settings import get_settings
from tests.approvals.conftest import pending_interrupt, saved_graph, serve_here
from tests.invariants.conftest import folder_bytes, leaks


@pytest.fixture
def every_logger_at_debug(caplog):
    """DEBUG on the root logger and on every logger that set its own level."""
    caplog.set_level(logging.DEBUG)
    saved = {}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            saved[name] = (logger.level, logger.disabled, logger.propagate)
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
    yield caplog
    for name, (level, disabled, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.disabled = disabled
        logger.propagate = propagate


async def _until_done(world, approval_id: str) -> None:
    deadline = time.monotonic() + 15
    while (await world.record(approval_id)).status is not ApprovalStatus.DONE:
        assert time.monotonic() < deadline, "the ping never completed the approval"
        await asyncio.sleep(0.05)


async def test_a_whole_conversation_leaves_no_token_anywhere(
    world, tmp_path, thread_config, monkeypatch, every_logger_at_debug, alice_tokens
) -> None:
    caplog = every_logger_at_debug
    grants: list[ApprovalGranted] = []
    original = CIBAClient.poll

    async def spy(self, request):
        granted = await original(self, request)
        grants.append(granted)
        return granted

    monkeypatch.setattr(CIBAClient, "poll", spy)
    outputs: list[object] = []
    agent_id = world.settings.agent_client_id
    db = tmp_path / "cp.sqlite"
    async with saved_graph(db) as graph:
        out = await graph.ainvoke(
            {"messages": [("user", "search github for popular repositories about AI")]},
            thread_config,
            context=world.ctx,
        )
        outputs.append(out)
        [search] = [m for m in out["messages"] if isinstance(m, ToolMessage)]
        assert search.status == "success" and "full_name" in search.content
        out = await graph.ainvoke(
            {"messages": [("user", "what do our internal documents say about the roadmap?")]},
            thread_config,
            context=world.ctx,
        )
        outputs.append(out)
        assert out["messages"][-2].name == "search_internal_documents"

        resumer = GraphResumer(graph)  # a callback resume carries no user token at all
        set_resumer(resumer)
        async with serve_here(Starlette(routes=routes)) as url:
            world.ciba.set_delivery(agent_id, "ping", url + CALLBACK_PATH)
            with get_settings.override(ciba_delivery_mode="ping"):
                out = await graph.ainvoke(
                    world.ask("leak-scan.md"), thread_config, context=world.ctx
                )
                outputs.append(out)
                payload = pending_interrupt(out)
                auth.credentials.credential_store().clear()
                world.approve(await world.record(payload["approval_id"]))
                await _until_done(world, payload["approval_id"])
                await world.ciba.flush()
        outputs.extend(resumer.results)
        state = await graph.aget_state(thread_config)
        history = [s async for s in graph.aget_state_history(thread_config)]
    assert world.gists() == 1 and len(grants) == 1

    # What a user sees from the CLI, logged in as alice.
    TokenFile().save(
        TokenSet(
            access_token=alice_tokens.access_token,
            expires_at=alice_tokens.expires_at,
            issuer=world.stack.issuer,
            client_id=world.settings.cli_client_id,
            audience=world.settings.audience,
            subject=world.sub,
            email="alice@example.com",
            scope=alice_tokens.scope,
            refresh_token=alice_tokens.refresh_token,
            id_token=alice_tokens.id_token,
        )
    )
    runner = CliRunner()
    cli = ""
    for args in (
        ["approvals", "log"],
        ["approvals", "log", "--json"],
        ["approvals", "log", "--all", "--json"],
        ["approvals", "list", "--all", "--json"],
        ["whoami"],
    ):
        # The CLI runs its own event loop: give it a thread of its own.
        result = await asyncio.to_thread(runner.invoke, app, args, env={"COLUMNS": "240"})
        cli += result.output + (repr(result.exception) if result.exception else "")
    assert "leak-scan.md" in cli  # the scan reads real output

    vault = get_token_vault()
    github = [
        await vault.get_token(
            user_id=world.sub,
            subject_token=alice_tokens.access_token,
            connection="github",
            scopes=scopes,
        )
        for scopes in ([], ["gist"])
    ]
    [granted] = grants
    s = world.settings
    secrets = {
        "alice access token": alice_tokens.access_token,
        "alice refresh token": alice_tokens.refresh_token or "",
        "alice id token": alice_tokens.id_token or "",
        "github token (search)": github[0].access_token,
        "github token (gist)": github[1].access_token,
        "ciba access token": granted.access_token,
        "ciba id token": granted.id_token or "",
        "ciba refresh token": granted.refresh_token or "",
        "notification token": notification_token(payload["approval_id"]),
        "agent client secret": s.agent_client_secret.get_secret_value(),
        "github client secret": s.devstack_github_client_secret.get_secret_value(),
    }
    logs = (
        "\n".join(f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
        + caplog.text
    )
    assert any(r.name.startswith("httpx") for r in caplog.records)  # DEBUG really was on
    haystacks: dict[str, str | bytes] = {
        "logs": logs,
        "outputs": repr(outputs),
        "state": repr(state),
        "history": repr(history),
        "checkpoint file": folder_bytes(*tmp_path.glob("cp.sqlite*")),
        "ledger file": folder_bytes(*tmp_path.glob("approvals.sqlite3*")),
        "cli output": cli,
        "chroma folder": folder_bytes(s.path("chroma")) if s.path("chroma").exists() else b"",
    }
    assert world.marker.encode() in haystacks["checkpoint file"]
    assert b"leak-scan.md" in haystacks["ledger file"]
    assert leaks(secrets, haystacks) == []
