"""A `langgraph dev` subprocess: its offline environment and command line (for `warrant dev`,
the tests' servers and the benchmarks too), and for `warrant demo --server` started, awaited,
logged, stopped.

It runs offline, without `--allow-blocking` (a blocking call on its event loop is an error, as
for a user) and without reload, in a working folder of its own whose project files are links to
this project, so its `.langgraph_api/` data never lands in the project.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_LIMIT_SECONDS = 120.0
BLOCKING_MARK = "Blocking call"
# `langgraph dev` offline: no analytics, version check, tracing or model download
OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
}
# ... and its output written as it happens, for a server whose log file is read while it runs
LOGGED_OFFLINE_ENV = {**OFFLINE_ENV, "PYTHONUNBUFFERED": "1"}
# The caller's settings and tracing a server of its own must not inherit.
_NOT_INHERITED_PREFIXES = ("WARRANT_", "LANGSMITH_", "LANGCHAIN_")
_NOT_INHERITED = ("LANGGRAPH_API_KEY",)


class LangGraphDevError(RuntimeError):
    """`langgraph dev` did not start; the message says why (with the end of its log)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the server binds it moments later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def inherited_environment(
    *,
    environ: Mapping[str, str] | None = None,
    drop_prefixes: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
) -> dict[str, str]:
    """`environ` (default this process's) without WARRANT_*, LANGSMITH_*, LANGCHAIN_* and
    LANGGRAPH_API_KEY, nor `drop_prefixes`/`drop`; the names in `keep` stay whatever they are."""
    source = os.environ if environ is None else environ
    prefixes = _NOT_INHERITED_PREFIXES + drop_prefixes
    names = _NOT_INHERITED + drop
    return {
        k: v
        for k, v in source.items()
        if k in keep or (not k.startswith(prefixes) and k not in names)
    }


def langgraph_dev_command(
    port: int, *, reload: bool = False, config: Path | None = None
) -> list[str]:
    """`langgraph dev` on 127.0.0.1:`port`, no browser, without reload unless asked."""
    return [
        langgraph_bin(),
        "dev",
        "--no-browser",
        *(() if reload else ("--no-reload",)),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(("--config", str(config)) if config is not None else ()),
    ]


def stop_process_group(
    process: subprocess.Popen[bytes],
    *,
    first: signal.Signals = signal.SIGTERM,
    timeout: float = 15.0,
) -> int | None:
    """Stop a server started in a process group of its own, and its workers: `first` to the
    group, SIGKILL if it lingers past `timeout` seconds; its exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, first)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    return process.returncode


def _project_entries(root: Path) -> list[Path]:
    """What `langgraph.json` needs beside it: the config, packaging and every Python package."""
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name in ("tests", "benchmarks"):
            continue
        if entry.name in ("langgraph.json", "pyproject.toml") or entry.suffix == ".py":
            found.append(entry)
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            found.append(entry)
    return found


def link_project(cwd: Path, root: Path = PROJECT_ROOT) -> None:
    """Make `cwd` a working folder for `langgraph dev` whose project files are `root`'s; a file
    already there (say a `langgraph.json` of its own) stays."""
    cwd.mkdir(parents=True, exist_ok=True)
    for entry in _project_entries(root):
        if not (cwd / entry.name).exists():
            (cwd / entry.name).symlink_to(entry)


def langgraph_bin() -> str:
    """This environment's own `langgraph`, else the one on PATH."""
    local = Path(sys.executable).with_name("langgraph")
    return str(local) if local.exists() else "langgraph"


@dataclass
class LangGraphDev:
    """A running `langgraph dev`: its URL, working folder, log file and process."""

    url: str
    cwd: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    startup_seconds: float

    @property
    def data_dir(self) -> Path:
        """Where the server keeps its threads and checkpoints."""
        return self.cwd / ".langgraph_api"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def blocking_calls(self) -> list[str]:
        """The log lines where the server refused a blocking call on its event loop."""
        return [line for line in self.log_text().splitlines() if BLOCKING_MARK in line]

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM its process group (workers too), SIGKILL if it lingers; its exit code."""
        return stop_process_group(self.process, timeout=timeout)


async def start_langgraph_dev(
    cwd: Path, env: dict[str, str], port: int, *, limit: float = STARTUP_LIMIT_SECONDS
) -> LangGraphDev:
    """Start `langgraph dev` in `cwd` on 127.0.0.1:`port` and wait until it answers `/ok`."""
    await asyncio.to_thread(link_project, cwd)
    log_path = cwd / "server.log"
    started = time.perf_counter()

    def spawn() -> subprocess.Popen[bytes]:
        with log_path.open("wb") as log:
            return subprocess.Popen(
                langgraph_dev_command(port),
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopping it stops its workers too
            )

    process = await asyncio.to_thread(spawn)
    server = LangGraphDev(f"http://127.0.0.1:{port}", cwd, log_path, process, 0.0)
    async with httpx.AsyncClient(timeout=2) as http:
        while time.perf_counter() - started < limit:
            if process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(server.url + "/ok")).status_code == 200:
                    server.startup_seconds = time.perf_counter() - started
                    return server
            await asyncio.sleep(0.2)
    await asyncio.to_thread(server.stop)
    tail = " ".join(server.log_text()[-600:].split())
    raise LangGraphDevError(
        f"langgraph dev did not answer /ok within {limit:.0f} s (exit {process.returncode}); "
        f"its log ends: {tail or 'nothing'}"
    )
