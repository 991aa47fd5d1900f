"""A real restart: one process asks and pushes the approval request, then exits; another process
(synchronous `graph.invoke` on the same SQLite checkpoint and ledger) resumes it after the user
approved: no second push, and the Gist is created exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.approvals.conftest import until_due

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # two subprocesses, each importing the agent


def _turn(env: dict[str, str], db: Path, sub: str, *args: str) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.graph.turn_runner",
            "--db",
            str(db),
            "--thread",
            "restart-1",
            "--user-id",
            sub,
            "--email",
            "alice@example.com",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    secret = env["GRAPH_TEST_SUBJECT_TOKEN"]
    assert secret not in done.stdout and secret not in done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_a_new_process_resumes_without_a_second_push(world, alice_tokens, tmp_path) -> None:
    env = {
        **os.environ,
        **world.stack.env(),
        "WARRANT_APPROVALS_DB": world.settings.approvals_db,
        "WARRANT_CIBA_DELIVERY_MODE": "poll",
        "GRAPH_TEST_SUBJECT_TOKEN": alice_tokens.access_token,
    }
    db = tmp_path / "threads.sqlite"
    ask = world.ask("restart.md")["messages"][0][1]
    first = await asyncio.to_thread(_turn, env, db, world.sub, "--message", ask)
    [pending] = first["interrupts"]
    assert pending["type"] == "approval_pending"
    record = await world.record(pending["approval_id"])
    assert len(world.pushes(record.action_digest)) == 1

    world.approve(record)
    await until_due(record)
    second = await asyncio.to_thread(_turn, env, db, world.sub, "--resume", "approved", "--sync")
    assert second["interrupts"] == []
    [url] = second["tool_results"]
    assert url.startswith("https://gist.github.com/")
    assert world.gists() == 1
    assert len(world.pushes(record.action_digest)) == 1
    assert (await world.record(record.id)).outcome == url
