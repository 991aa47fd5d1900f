"""A real `langgraph dev` (offline, no reload) configured for the session's devstack provider."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from devstack.demo.langgraph_dev import (
    LOGGED_OFFLINE_ENV,
    PROJECT_ROOT,
    LangGraphDev,
    LangGraphDevError,
    free_port,
    inherited_environment,
    start_langgraph_dev,
)
from devstack.demo.served import thread_interrupts

REPO = PROJECT_ROOT
LangGraphServer = LangGraphDev  # the name the server tests know it by
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def server_client(server: LangGraphServer, token: str | None = None, **headers: str) -> Any:
    """An SDK client for `server`, with `token` as bearer token (none: anonymous)."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return get_client(url=server.url, api_key=None, headers=headers)


async def http_answer(awaitable: Awaitable[Any]) -> tuple[int, str]:
    """The HTTP status and body of an SDK call: 200 and nothing when it succeeds."""
    try:
        await awaitable
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code, exc.response.text
    return 200, ""


async def http_status(awaitable: Awaitable[Any]) -> int:
    """The HTTP status of an SDK call (200 when it succeeds)."""
    return (await http_answer(awaitable))[0]


def interrupt_values(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The values of the interrupts a thread state from the server's API holds."""
    return [i.get("value", i) for i in thread_interrupts(state)]


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
    if auth_config:
        config = json.loads((REPO / "langgraph.json").read_text())
        config["auth"] = {**config.get("auth", {}), **auth_config}
        (cwd / "langgraph.json").write_text(json.dumps(config, indent=2))
    env = inherited_environment(drop_prefixes=("OPENAI_",))
    env.update(devstack.env())
    env.update(LOGGED_OFFLINE_ENV)
    env.update({"WARRANT_DATA_DIR": str(cwd / "warrant-data"), "WARRANT_MODEL": "offline"})
    env.update(extra_env or {})
    try:
        # on a thread of its own: some callers are coroutines, inside a running event loop
        with ThreadPoolExecutor(1) as pool:
            server = pool.submit(asyncio.run, start_langgraph_dev(cwd, env, free_port())).result()
    except LangGraphDevError as exc:
        log = (cwd / "server.log").read_text(errors="replace")[-4000:]
        pytest.fail(f"{exc}\n{log}")
    print(f"\nlanggraph dev answered /ok after {server.startup_seconds:.2f} s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def langgraph_server(devstack, tmp_path_factory) -> Iterator[LangGraphServer]:
    with run_langgraph_dev(devstack, tmp_path_factory.mktemp("langgraph-dev")) as server:
        yield server


@pytest.fixture
def alice(langgraph_server, alice_tokens) -> Any:
    """The session's server, as alice."""
    return server_client(langgraph_server, alice_tokens.access_token)


@pytest.fixture
def bob(langgraph_server, bob_tokens) -> Any:
    """The session's server, as bob."""
    return server_client(langgraph_server, bob_tokens.access_token)
