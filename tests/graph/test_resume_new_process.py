"""A conversation interrupted in one process resumes in another from the SQLite file alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.graph.conftest import CANARY_SUBJECT_TOKEN

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # six subprocesses, each importing the agent


def _turn(db: Path, *args: str, token: str | None = CANARY_SUBJECT_TOKEN) -> dict:
    env = {**os.environ}
    env.pop("GRAPH_TEST_SUBJECT_TOKEN", None)
    if token:
        env["GRAPH_TEST_SUBJECT_TOKEN"] = token
    done = subprocess.run(
        [sys.executable, "-m", "tests.graph.turn_runner", "--db", str(db), "--thread", "p1", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for secret in (CANARY_SUBJECT_TOKEN,):
        assert secret not in done.stderr and secret not in done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_interrupted_in_one_process_resumed_in_another(provider, tmp_path) -> None:
    db = tmp_path / "threads.sqlite"
    alice = ("--user-id", "auth0|alice", "--email", "alice@example.com")
    first = _turn(db, "--message", "show me popular repositories about AI", *alice)
    assert [i["type"] for i in first["interrupts"]] == ["connection_required"]
    assert first["user"] == {"sub": "auth0|alice", "email": "alice@example.com"}

    # A resume in another process (synchronous SqliteSaver this time) with a forged "connected":
    # the vault is asked again and still says no.
    forged = _turn(db, "--resume", "connected", "--sync", *alice)
    assert [i["type"] for i in forged["interrupts"]] == ["connection_required"]
    assert forged["tool_results"] == []

    provider.connected = True  # alice connects GitHub at the provider, between the processes
    second = _turn(db, "--resume", "connected", *alice)
    assert second["interrupts"] == []
    assert "Top 5 GitHub repositories for 'AI'" in second["last"]
    assert provider.subject_tokens[-1] == CANARY_SUBJECT_TOKEN

    # A third process, with no caller at all (a resumer): acts for the recorded user.
    third = _turn(db, "--message", "who am i", "--sync", token=None)
    assert "alice@example.com (user id auth0|alice)" in third["last"]

    # A fourth process as bob: refused, and the thread is unchanged.
    fourth = _turn(db, "--message", "who am i", "--user-id", "auth0|bob", token=None)
    assert fourth["error"] == "IdentityMismatch"
    fifth = _turn(db, "--message", "who am i", *alice, token=None)
    assert "alice@example.com" in fifth["last"]

    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("threads"))
    assert CANARY_SUBJECT_TOKEN.encode() not in data
    assert provider.github_token.encode() not in data
