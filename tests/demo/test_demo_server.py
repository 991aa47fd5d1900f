"""`warrant demo --server`: the four steps through a real `langgraph dev`, the JSON shape of
`warrant demo --json`, no token in any output; a server that cannot start, or that refuses a
blocking call during a step, fails the run with a clear line."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import devstack.demo.langgraph_dev as langgraph_dev
import devstack.demo.served as served
from cli.main import app
from devstack.demo.langgraph_dev import BLOCKING_MARK, LangGraphDev, link_project
from tests.demo.conftest import STEPS, one_json_object, passing_report

pytestmark = pytest.mark.server


def test_demo_server_json_every_step_passes_through_langgraph_dev(seen_tokens) -> None:
    result = CliRunner().invoke(app, ["demo", "--server", "--json"])
    details = passing_report(result, STEPS, seen_tokens)
    assert "alice -> alice@example.com" in details["login"]
    assert "exactly what the local GitHub API answers" in details["github_search"]
    assert "240,000 EUR" in details["documents"]
    assert "the server's /warrant/ciba/callback resumed the thread" in details["gist_approval"]
    assert "exactly one public Gist" in details["gist_approval"]


def test_a_server_that_cannot_start_fails_the_run_clearly(monkeypatch) -> None:
    monkeypatch.setattr(langgraph_dev, "langgraph_bin", lambda: "false")
    result = CliRunner().invoke(app, ["demo", "--server", "--json"])
    assert result.exit_code == 1
    report = one_json_object(result.stdout)
    assert report["ok"] is False
    [step] = report["steps"]
    assert step["name"] == "langgraph dev" and step["ok"] is False
    assert "did not answer /ok" in step["detail"] and "exit 1" in step["detail"]


async def test_a_blocking_call_the_server_refused_fails_the_step(tmp_path) -> None:
    log = tmp_path / "server.log"
    log.write_text("started\n")
    process = subprocess.Popen(["true"])
    process.wait()
    server = LangGraphDev("http://127.0.0.1:9", tmp_path, log, process, 0.0)
    world = SimpleNamespace(server=server, secrets=["tok-123"])

    async def blocks(_world) -> str:
        with log.open("a") as out:
            out.write(f"store failure: {BLOCKING_MARK} to os.mkdir (token tok-123)\n")
        return "looked fine"

    async def clean(_world) -> str:
        return "fine"

    failed = await served._checked(world, "documents", blocks, 5)
    assert failed.ok is False
    assert "refused a blocking call" in failed.detail and "os.mkdir" in failed.detail
    assert "tok-123" not in failed.detail  # the log line is scrubbed like any detail
    passed = await served._checked(world, "login", clean, 5)  # an earlier line is not its own
    assert passed.ok is True and passed.detail == "fine"


def test_the_server_folder_links_the_project_and_nothing_else(tmp_path) -> None:
    link_project(tmp_path / "cwd")
    names = {p.name for p in (tmp_path / "cwd").iterdir()}
    assert {"langgraph.json", "settings.py", "graph", "auth", "vectorstore"} <= names
    assert not names & {"tests", "benchmarks", ".git", ".warrant", ".langgraph_api"}
    assert all((tmp_path / "cwd" / n).is_symlink() for n in names)
    config = json.loads((tmp_path / "cwd" / "langgraph.json").read_text())
    assert "agent" in config["graphs"]
