"""A real `langgraph dev` (offline, no reload) configured for the session's devstack provider."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
# What `langgraph.json` needs next to it; linked, so the server's cwd (and its `.langgraph_api/`
# data folder) is a fresh temporary directory and never the repository.
_LINKED = (
    "langgraph.json",
    "pyproject.toml",
    "settings.py",
    "graph",
    "tools",
    "auth",
    "vectorstore",
    "devstack",
    "cli",
)
STARTUP_LIMIT_SECONDS = 120


@dataclass
class LangGraphServer:
    url: str
    cwd: Path
    log_path: Path
    startup_seconds: float
    process: subprocess.Popen

    @property
    def data_dir(self) -> Path:
        return self.cwd / ".langgraph_api"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _langgraph_bin() -> str:
    candidate = Path(sys.executable).with_name("langgraph")
    return str(candidate) if candidate.exists() else "langgraph"


@contextlib.contextmanager
def run_langgraph_dev(
    devstack,
    cwd: Path,
    *,
    auth_config: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[LangGraphServer]:
    """Start `langgraph dev` in `cwd` (linked to the repository) and stop it on exit.

    `auth_config`: keys merged into `langgraph.json`'s `auth` section (for this server only).
    """
    for name in _LINKED:
        if name == "langgraph.json" and auth_config:
            config = json.loads((REPO / name).read_text())
            config["auth"] = {**config.get("auth", {}), **auth_config}
            (cwd / name).write_text(json.dumps(config, indent=2))
        elif (REPO / name).exists():
            (cwd / name).symlink_to(REPO / name)
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WARRANT_", "LANGSMITH_", "LANGCHAIN_", "OPENAI_"))
        and k not in ("LANGGRAPH_API_KEY",)
    }
    env.update(devstack.env())
    env.update(
        {
            "WARRANT_DATA_DIR": str(cwd / "warrant-data"),
            "WARRANT_MODEL": "offline",
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "LANGGRAPH_NO_VERSION_CHECK": "true",
            "LANGSMITH_TRACING": "false",
            "LANGCHAIN_TRACING_V2": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    log_path = cwd / "server.log"
    log = log_path.open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            _langgraph_bin(),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: teardown stops it and its children
    )
    url = f"http://127.0.0.1:{port}"
    server = None
    try:
        deadline = started + STARTUP_LIMIT_SECONDS
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                break
            try:
                if httpx.get(url + "/ok", timeout=1).status_code == 200:
                    server = LangGraphServer(
                        url, cwd, log_path, time.perf_counter() - started, process
                    )
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        if server is None:
            log.flush()
            pytest.fail(
                "langgraph dev did not answer /ok:\n" + log_path.read_text(errors="replace")[-4000:]
            )
        print(f"\nlanggraph dev answered /ok after {server.startup_seconds:.2f} s")
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        log.close()


@pytest.fixture(scope="session")
def langgraph_server(devstack, tmp_path_factory) -> Iterator[LangGraphServer]:
    with run_langgraph_dev(devstack, tmp_path_factory.mktemp("langgraph-dev")) as server:
        yield server
