"""`DevStack` (threaded uvicorn on loopback, issuer from the bound port) and `warrant devstack`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.identity.autologin import login
from devstack.server import DevStack
from settings import get_settings

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def test_ephemeral_ports_and_client_configuration(devstack):
    ports = {_port(devstack.issuer)}
    assert devstack.issuer.startswith("http://127.0.0.1:") and devstack.issuer.endswith("/")
    if devstack.github_url:
        ports.add(_port(devstack.github_url))
        assert devstack.overrides["github_api_url"] == devstack.github_url
    if devstack.fga_url:
        ports.add(_port(devstack.fga_url))
        assert devstack.overrides["fga_api_url"] == devstack.fga_url
    assert len(ports) == 1 + bool(devstack.github_url) + bool(devstack.fga_url)
    assert devstack.overrides["issuer"] == devstack.issuer
    env = devstack.env()
    assert env["WARRANT_ISSUER"] == devstack.issuer
    assert env["WARRANT_AGENT_CLIENT_ID"] == get_settings().agent_client_id
    assert set(env) >= {"WARRANT_AUDIENCE", "WARRANT_AGENT_CLIENT_SECRET", "WARRANT_CLI_CLIENT_ID"}
    assert devstack.settings.issuer_url == devstack.issuer


def test_use_devstack_points_settings_at_the_stack(use_devstack, devstack):
    assert get_settings().issuer_url == devstack.issuer
    assert use_devstack.issuer_url == devstack.issuer


def test_github_app_is_served_when_present(devstack):
    if devstack.github_url is None:
        pytest.skip("devstack.github_api is not in this checkout")
    answer = httpx.get(devstack.github_url + "/search/repositories", params={"q": "ai"})
    assert answer.status_code in (200, 401, 403)  # served, whatever its auth policy


async def test_restart_keeps_the_key_and_stop_frees_the_port(tmp_path):
    stack = DevStack(get_settings(), ephemeral=True, data_dir=tmp_path)
    with stack:
        s = stack.settings
        tokens = await login(
            stack.issuer,
            "alice@example.com",
            s.alice_password.get_secret_value(),
            client_id=s.cli_client_id,
        )
        first_kid = stack.provider.signing_key.kid
        port = _port(stack.issuer)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=2)
    with DevStack(get_settings(), ephemeral=True, data_dir=tmp_path) as again:
        assert again.provider.signing_key.kid == first_kid
        # a token from before the restart verifies by key, but its issuer (old port) differs
        assert again.provider.verify_access_token(tokens.access_token) is None
        refreshed = httpx.post(
            again.issuer + "oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "client_id": s.cli_client_id,
            },
        )
    assert refreshed.status_code == 200  # refresh tokens survive a restart


def test_busy_port_fails_cleanly(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        settings = get_settings().model_copy(
            update={"devstack_idp_port": port, "devstack_github_port": 0, "devstack_fga_port": 0}
        )
        with pytest.raises(OSError):
            DevStack(settings, data_dir=tmp_path).start()
    finally:
        busy.close()


def test_only_loopback(tmp_path):
    settings = get_settings().model_copy(update={"devstack_host": "0.0.0.0"})
    with pytest.raises(ValueError, match="loopback"):
        DevStack(settings, ephemeral=True, data_dir=tmp_path).start()


def _cli(tmp_path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "WARRANT_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "devstack", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_warrant_devstack_prints_the_agent_environment_and_stops_on_sigterm(tmp_path):
    env_file = tmp_path / "agent.env"
    proc = _cli(tmp_path, "--ephemeral", "--env-file", str(env_file))
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        issuer = exports["WARRANT_ISSUER"]
        doc = httpx.get(issuer + ".well-known/openid-configuration", timeout=5).json()
        assert doc["issuer"] == issuer
        assert "WARRANT_AGENT_CLIENT_SECRET" in exports
        assert env_file.stat().st_mode & 0o077 == 0
        assert f"WARRANT_ISSUER={issuer}" in env_file.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0


def test_warrant_devstack_on_a_busy_port_says_so(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        env = {
            **os.environ,
            "WARRANT_DATA_DIR": str(tmp_path),
            "WARRANT_DEVSTACK_IDP_PORT": str(busy.getsockname()[1]),
            "WARRANT_DEVSTACK_GITHUB_PORT": "0",
            "WARRANT_DEVSTACK_FGA_PORT": "0",
        }
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "devstack"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        busy.close()
    assert done.returncode == 1
    assert "cannot listen" in done.stderr and "Traceback" not in done.stderr
