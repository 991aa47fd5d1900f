"""`warrant dev` keeps serving while its data folder changes under the server's file watcher.

`langgraph dev` reloads on file changes in its working folder, which is where `warrant dev`
keeps `./.warrant` (the ledger, FGA tuples, Chroma, the devstack's users). A reload while a run
or an approval is in flight loses them, so SQLite writes there (by the server itself, and by
`warrant ingest` beside it) must not restart it, while a code change still does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from devstack.demo.langgraph_dev import free_port, link_project
from devstack.identity.autologin import login
from settings import Settings

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[2]
RELOADING = "Reloading"
STARTED = "Application started up"


def _clean(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


async def _until(predicate, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_data_writes_while_serving_do_not_restart_the_server(tmp_path) -> None:
    project = tmp_path / "project"
    link_project(project)
    port, idp, github, fga = (free_port() for _ in range(4))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARRANT_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "WARRANT_DEVSTACK_IDP_PORT": str(idp),
            "WARRANT_DEVSTACK_GITHUB_PORT": str(github),
            "WARRANT_DEVSTACK_FGA_PORT": str(fga),
        }
    )
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev", "--port", str(port)],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def log_text() -> str:
        return _clean(log_path.read_text(errors="replace"))

    def answering() -> bool:
        assert process.poll() is None, log_text()[-3000:]
        try:
            return httpx.get(url + "/ok", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await _until(answering, 120, "warrant dev's server did not answer /ok")
        data = project / ".warrant"
        assert data.is_dir()  # the data folder really is inside the watched tree
        defaults = Settings()
        tokens = await login(
            f"http://127.0.0.1:{idp}/",
            "alice@example.com",
            defaults.alice_password.get_secret_value(),
            client_id=defaults.cli_client_id,
            audience=defaults.audience,
        )
        client = get_client(
            url=url, api_key=None, headers={"Authorization": f"Bearer {tokens.access_token}"}
        )
        thread = await client.threads.create()
        question = "Search the internal documents: where is the team offsite?"
        run = await client.runs.create(
            thread["thread_id"],
            "agent",
            input={"messages": [{"role": "user", "content": question}]},
        )
        # while the run is in flight: another process ingests, and SQLite files churn
        ingest = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "ingest",
                str(REPO / "vectorstore" / "demo_corpus" / "lisbon-offsite.md"),
                "--owner",
                "alice@example.com",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ingest.returncode == 0, ingest.stderr
        with sqlite3.connect(data / "scratch.sqlite3") as db:
            db.execute("create table if not exists t (x)")
            for i in range(30):
                db.execute("insert into t values (?)", (i,))
                db.commit()
        await client.runs.join(thread["thread_id"], run["run_id"])
        done = await client.runs.get(thread["thread_id"], run["run_id"])
        assert done["status"] == "success", done
        # and the served agent answers from what was ingested meanwhile
        values = await client.runs.wait(
            thread["thread_id"],
            "agent",
            input={"messages": [{"role": "user", "content": question}]},
        )
        assert "Lisbon" in values["messages"][-1]["content"]
        await asyncio.sleep(2)  # the watcher batches changes: give it time to react
        text = log_text()
        assert RELOADING not in text, [line for line in text.splitlines() if RELOADING in line]
        assert text.count(STARTED) == 1

        # the watcher is live: a code change does restart the server
        (project / "zz_reload_probe.py").write_text("PROBE = 1\n")
        await _until(lambda: RELOADING in log_text(), 30, "a code change did not reload")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
