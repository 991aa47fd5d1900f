"""`warrant dev`: the devstack and `langgraph dev`, configured for each other, stopped together."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import cli.demo as demo_cli
from cli.main import app
from settings import get_settings

REPO = Path(__file__).resolve().parents[2]

# Stands in for `langgraph dev`: records what it was started with and whether the devstack
# answered at the issuer it was given, then exits with a code of its own.
FAKE_SERVER = """
import json, os, sys, urllib.request
issuer = os.environ["WARRANT_ISSUER"]
with urllib.request.urlopen(issuer + ".well-known/openid-configuration", timeout=5) as r:
    discovery = json.load(r)
keys = ("WARRANT_ISSUER", "WARRANT_GITHUB_API_URL", "WARRANT_AGENT_CLIENT_ID",
        "WARRANT_CIBA_DELIVERY_MODE", "WARRANT_CIBA_NOTIFICATION_ENDPOINT",
        "LANGGRAPH_CLI_NO_ANALYTICS", "LANGGRAPH_NO_VERSION_CHECK", "LANGSMITH_TRACING")
with open(sys.argv[1], "w") as out:
    json.dump({"issuer": discovery["issuer"], "argv": sys.argv[2:],
               "env": {k: os.environ.get(k) for k in keys}}, out)
sys.exit(7)
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_server_gets_the_devstack_settings_and_offline_flags(tmp_path, monkeypatch) -> None:
    idp, github, fga, server_port = _free_ports(4)
    record = tmp_path / "started.json"
    seen_command: list[list[str]] = []
    real_command = demo_cli.langgraph_command

    def fake_command(config: Path, port: int) -> list[str]:
        seen_command.append(real_command(config, port))
        return [sys.executable, "-c", FAKE_SERVER, str(record), str(config), str(port)]

    monkeypatch.setattr(demo_cli, "langgraph_command", fake_command)
    ports = {"devstack_idp_port": idp, "devstack_github_port": github, "devstack_fga_port": fga}
    with get_settings.override(data_dir=tmp_path / "data", **ports):
        result = CliRunner().invoke(app, ["dev", "--port", str(server_port)])
    assert result.exit_code == 7, result.output  # the server's own exit code
    started = json.loads(record.read_text())
    env = started["env"]
    assert started["issuer"] == env["WARRANT_ISSUER"] == f"http://127.0.0.1:{idp}/"
    assert env["WARRANT_GITHUB_API_URL"] == f"http://127.0.0.1:{github}"
    assert env["LANGGRAPH_CLI_NO_ANALYTICS"] == "1"
    assert env["LANGGRAPH_NO_VERSION_CHECK"] == "true" and env["LANGSMITH_TRACING"] == "false"
    assert env["WARRANT_CIBA_DELIVERY_MODE"] == "ping"
    assert env["WARRANT_CIBA_NOTIFICATION_ENDPOINT"] == (
        f"http://127.0.0.1:{server_port}/warrant/ciba/callback"
    )
    assert started["argv"] == [str(REPO / "langgraph.json"), str(server_port)]
    [command] = seen_command
    assert command[1:5] == ["dev", "--no-browser", "--host", "127.0.0.1"]
    assert command[command.index("--port") + 1] == str(server_port)
    assert f"identity provider  http://127.0.0.1:{idp}/" in result.stdout
    assert not any(_listening(p) for p in (idp, github, fga))  # stopped with the server


def test_poll_delivery_and_bad_options(tmp_path) -> None:
    base = get_settings().model_copy(update={"ciba_delivery_mode": "ping"})
    polled = demo_cli.dev_settings(base, 2024, "poll")
    assert polled.ciba_delivery_mode == "poll"
    env = demo_cli.server_environment({"WARRANT_ISSUER": "http://127.0.0.1:1/"}, polled)
    assert env["WARRANT_CIBA_DELIVERY_MODE"] == "poll"
    result = CliRunner().invoke(app, ["dev", "--ciba-delivery", "carrier-pigeon"])
    assert result.exit_code == 2 and "ping or poll" in result.stderr
    result = CliRunner().invoke(app, ["dev", "--config", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "no langgraph.json" in result.stderr


def test_ports_in_use_is_a_clear_error(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        [server_port] = _free_ports(1)
        with get_settings.override(data_dir=tmp_path, devstack_idp_port=port):
            result = CliRunner().invoke(app, ["dev", "--port", str(server_port)])
    assert result.exit_code == 1
    assert "could not start" in result.stderr and "Traceback" not in result.output


@pytest.mark.server
def test_warrant_dev_serves_both_until_interrupted(tmp_path) -> None:
    """The real thing: `langgraph dev` answers with the agent's routes, Ctrl-C stops both."""
    for name in ("langgraph.json", "pyproject.toml", "settings.py", "graph", "tools", "auth"):
        (tmp_path / name).symlink_to(REPO / name)
    for name in ("vectorstore", "devstack", "cli"):
        (tmp_path / name).symlink_to(REPO / name)
    idp, github, fga, port = _free_ports(4)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WARRANT_", "LANGSMITH_", "LANGCHAIN_", "OPENAI_"))
    }
    env.update(
        WARRANT_DATA_DIR=str(tmp_path / "data"),
        WARRANT_DEVSTACK_IDP_PORT=str(idp),
        WARRANT_DEVSTACK_GITHUB_PORT=str(github),
        WARRANT_DEVSTACK_FGA_PORT=str(fga),
        WARRANT_MODEL="offline",
    )
    log = (tmp_path / "dev.log").open("wb")
    warrant = Path(sys.executable).with_name("warrant")
    process = subprocess.Popen(
        [str(warrant), "dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/warrant/health", timeout=1)
                if answer.status_code == 200:
                    health = answer.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert health is not None, (tmp_path / "dev.log").read_text(errors="replace")[-3000:]
        assert health["ok"] is True and health["model"] == "offline"
        discovery = httpx.get(f"http://127.0.0.1:{idp}/.well-known/openid-configuration").json()
        assert discovery["issuer"] == f"http://127.0.0.1:{idp}/"
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()
    time.sleep(0.5)
    assert not any(_listening(p) for p in (idp, github, fga, port))
    assert (tmp_path / ".langgraph_api").exists()  # its data stayed in the given folder


def test_a_busy_server_port_is_refused_before_anything_starts(tmp_path, monkeypatch) -> None:
    """`langgraph dev` would move to another port while the pings went to the busy one."""
    idp, github, fga = _free_ports(3)
    started: list[object] = []
    monkeypatch.setattr(demo_cli.subprocess, "Popen", lambda *a, **k: started.append(a))
    ports = {"devstack_idp_port": idp, "devstack_github_port": github, "devstack_fga_port": fga}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with get_settings.override(data_dir=tmp_path, **ports):
            result = CliRunner().invoke(app, ["dev", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port" in result.stderr
    assert started == [] and not _listening(idp)
