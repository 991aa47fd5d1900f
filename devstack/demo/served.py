"""`warrant demo --server`: the demo's four steps, each through a real `langgraph dev`.

The devstack runs in this process on ephemeral loopback ports; `langgraph dev` runs as its own
process (offline, no `--allow-blocking`, no reload), configured for the devstack with ping
delivery to its callback route, and shares a temporary data folder with this process (Chroma,
FGA tuples and the approvals ledger, all in SQLite files). Each step talks to the server with
`langgraph_sdk` and the bearer token of a real login, and fails if the server logged a blocking
call while it ran. The report has the shape `warrant demo --json` prints.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from langchain_core.messages import BaseMessage, messages_from_dict
from langgraph.types import Command, Interrupt

from devstack.demo.gist_approval import (
    SETTLE_SECONDS,
    approve_replay_deny,
    missing_modules,
    scenario_detail,
)
from devstack.demo.langgraph_dev import (
    LOGGED_OFFLINE_ENV,
    LangGraphDev,
    LangGraphDevError,
    free_port,
    inherited_environment,
)
from devstack.demo.report import DemoReport, StepResult, scrub
from devstack.demo.runner import (
    STEP_TIMEOUT_SECONDS,
    Step,
    _release,
    demo_changes,
    record,
    run_step,
    run_steps,
    start_devstack,
)
from devstack.demo.world import DemoError, DemoWorld
from settings import Settings, get_settings

# Of the caller's WARRANT_* settings, the server keeps only what a chosen model needs.
KEPT_SETTINGS = ("WARRANT_OPENAI_API_KEY", "WARRANT_OPENAI_BASE_URL")


def _messages(raw: Sequence[Any]) -> list[BaseMessage]:
    """The server's JSON messages as LangChain messages (what the in-process steps read)."""
    return messages_from_dict([{"type": m.get("type"), "data": m} for m in raw])


def thread_interrupts(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The interrupts of a thread state from the server's API."""
    pending = list(raw.get("interrupts") or [])
    if not pending:  # older servers list them per task only
        for task in raw.get("tasks") or []:
            pending.extend(task.get("interrupts") or [])
    return pending


class ServedWorld(DemoWorld):
    """The demo world with the graph behind `langgraph dev`: runs go through `langgraph_sdk`
    with the user's bearer token; states come back from the server's API."""

    def __init__(self, stack: Any, settings: Settings, server: LangGraphDev) -> None:
        super().__init__(stack, settings, _ServedGraph(self), server.data_dir)
        self.server = server
        self._owners: dict[str, str] = {}  # thread id -> who created it
        self._states: list[bytes] = []  # every thread state the server returned, as JSON

    async def client(self, who: str) -> Any:
        """An SDK client that calls the server as `who` (bearer token from a real login)."""
        from langgraph_sdk import get_client

        token = (await self.tokens(who)).access_token
        return get_client(
            url=self.server.url, api_key=None, headers={"Authorization": f"Bearer {token}"}
        )

    def thread(self, name: str) -> dict[str, Any]:
        """A config for a thread the server creates on the first run."""
        return {"configurable": {"thread_id": None, "name": name}}

    async def run(self, who: str, payload: Any, config: dict[str, Any]) -> dict[str, Any]:
        """One run on the server as `who`; the thread's state afterwards, as the graph's output."""
        client = await self.client(who)
        thread_id = config["configurable"].get("thread_id")
        if thread_id is None:
            thread_id = (await client.threads.create())["thread_id"]
            config["configurable"]["thread_id"] = thread_id
            self._owners[thread_id] = who
        if isinstance(payload, str):
            await client.runs.wait(
                thread_id, "agent", input={"messages": [{"role": "user", "content": payload}]}
            )
        elif isinstance(payload, Command):
            await client.runs.wait(thread_id, "agent", command={"resume": payload.resume})
        else:
            raise TypeError(f"unexpected payload {type(payload).__name__}")
        state = await self.state(thread_id)
        out = dict(state.values)
        out["__interrupt__"] = list(state.interrupts)
        return out

    async def state(self, thread_id: str) -> Any:
        """The thread's state from the server: values (LangChain messages), next, interrupts."""
        client = await self.client(self._owners.get(thread_id, "alice"))
        raw = await client.threads.get_state(thread_id)
        self._states.append(json.dumps(raw, default=str).encode())
        values = dict(raw.get("values") or {})
        values["messages"] = _messages(values.get("messages") or [])
        pending = thread_interrupts(raw)
        return SimpleNamespace(
            values=values,
            next=tuple(raw.get("next") or ()),
            interrupts=tuple(
                Interrupt(value=i.get("value"), id=str(i.get("id") or "")) for i in pending
            ),
        )

    async def thread_status(self, thread_id: str) -> str:
        client = await self.client(self._owners.get(thread_id, "alice"))
        return str((await client.threads.get(thread_id)).get("status"))

    def checkpoint_bytes(self) -> bytes:
        """What the server persisted for the demo's threads, as its API returned it (every
        state fetched so far), and the files of its data folder."""
        stored = b"".join(self._states)
        folder = self.checkpoint_path
        if folder.is_dir():
            stored += b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())
        return stored


class _ServedGraph:
    """The part of a compiled graph's interface the shared steps use (`aget_state`)."""

    def __init__(self, world: ServedWorld) -> None:
        self._world = world

    async def aget_state(self, config: dict[str, Any]) -> Any:
        return await self._world.state(str(config["configurable"]["thread_id"]))


async def _settled(world: ServedWorld, config: dict[str, Any]) -> Any:
    """Wait until the server resumed the thread on the ping and finished: its final state."""
    thread_id = str(config["configurable"]["thread_id"])
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        # idle before and after reading the state: no run was half way through it
        before = await world.thread_status(thread_id)
        state = await world.state(thread_id)
        idle = before == "idle" and await world.thread_status(thread_id) == "idle"
        if idle and not state.interrupts:
            return state
        if time.monotonic() > deadline:
            raise DemoError(f"the server did not resume the thread within {SETTLE_SECONDS:.0f} s")
        await asyncio.sleep(0.1)


async def gist_approval_step(world: DemoWorld) -> str:
    """Approve one Gist (created once, by the server's resume on the provider's ping), deny
    another (nothing); a replayed ping and a forged resume through the API make no second."""
    if not isinstance(world, ServedWorld):
        raise DemoError("this step needs the demo's langgraph dev server")
    missing = missing_modules()
    if missing:
        raise DemoError("not available: missing " + ", ".join(missing))
    url = str(world.settings.ciba_notification_endpoint)

    async def settle(config: dict[str, Any], _: int) -> Any:
        return await _settled(world, config)

    async def quiesce(config: dict[str, Any]) -> None:
        await _settled(world, config)  # anything the replay could have started has finished

    payload, gist, replay = await approve_replay_deny(
        world, url, settle=settle, quiesce=quiesce, receiver="server's"
    )
    stored = world.checkpoint_bytes()
    if any(secret.encode() in stored for secret in world.secrets):
        raise DemoError("a token was found in what the server stored")
    return scenario_detail(payload, gist, replay, f"the server's /{url.split('/', 3)[-1]}")


def served_steps() -> list[tuple[str, Step]]:
    """The demo's steps as the server runs them (the same names as `warrant demo`'s)."""
    from devstack.demo.steps import documents_step, github_search_step, login_step

    return [
        ("login", login_step),
        ("github_search", github_search_step),
        ("documents", documents_step),
        ("gist_approval", gist_approval_step),
    ]


def server_environment(stack: Any, settings: Settings) -> dict[str, str]:
    """`langgraph dev`'s environment: no WARRANT_* of the caller's (but a model's key), the
    devstack's, the demo's embedded parts and data folder, ping delivery to its route."""
    env = inherited_environment(keep=KEPT_SETTINGS)
    env.update(stack.env())
    env.update(LOGGED_OFFLINE_ENV)
    env.update(
        {
            "WARRANT_DATA_DIR": str(settings.data_dir.absolute()),
            "WARRANT_MODEL": settings.model,
            "WARRANT_FGA_BACKEND": "local",
            "WARRANT_CHROMA_MODE": "persistent",
            "WARRANT_EMBEDDINGS": "local",
            "WARRANT_STUDIO_ENABLED": "false",
            "WARRANT_CIBA_DELIVERY_MODE": "ping",
            "WARRANT_CIBA_NOTIFICATION_ENDPOINT": str(settings.ciba_notification_endpoint),
        }
    )
    return env


async def _checked(world: ServedWorld, name: str, step: Step, limit: float) -> StepResult:
    """Run a step; a blocking call the server refused while it ran fails it."""
    before = len(world.server.blocking_calls())
    result = await run_step(world, name, step, limit)
    blocked = world.server.blocking_calls()[before:]
    if blocked and result.ok:
        line, _ = scrub(" ".join(blocked[0].split())[:300], world.secrets)
        result = StepResult(
            name,
            False,
            f"the server refused a blocking call on its event loop: {line}",
            result.seconds,
        )
    return result


async def run_served_demo(
    *,
    model: str | None = None,
    steps: Sequence[tuple[str, Step]] | None = None,
    step_timeout: float = STEP_TIMEOUT_SECONDS,
    on_step: Callable[[StepResult], None] | None = None,
    log_level: str = "warning",
) -> DemoReport:
    """Start a devstack and `langgraph dev` in a temporary folder, run each step through the
    server, stop both; returns the report."""
    from devstack.demo.langgraph_dev import start_langgraph_dev
    from graph.callbacks import CALLBACK_PATH
    from graph.model import describe

    chosen = list(steps) if steps is not None else served_steps()
    spec = describe(model if model is not None else get_settings().model)
    report = DemoReport(model=spec)
    started = time.perf_counter()

    def fail(name: str, detail: str) -> DemoReport:
        record(report, StepResult(name, False, detail), on_step)
        report.seconds = time.perf_counter() - started
        return report

    with tempfile.TemporaryDirectory(prefix="warrant-demo-server-") as tmp:
        root = Path(tmp)
        try:
            stack = await start_devstack(spec, root, log_level)
        except (OSError, RuntimeError) as exc:
            return fail("devstack", f"the devstack could not start: {exc}")
        try:
            port = free_port()
            callback = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
            changes = demo_changes(spec, root, stack)
            changes.update(ciba_delivery_mode="ping", ciba_notification_endpoint=callback)
            with get_settings.override(**changes) as settings:
                ciba = stack.provider.extensions["ciba"]
                ciba.set_delivery(settings.agent_client_id, "ping", callback)
                try:
                    server = await start_langgraph_dev(
                        root / "server", server_environment(stack, settings), port
                    )
                except LangGraphDevError as exc:
                    return fail("langgraph dev", str(exc))
                world = ServedWorld(stack, settings, server)
                try:
                    await run_steps(world, chosen, report, step_timeout, on_step, run=_checked)
                finally:
                    await asyncio.to_thread(server.stop)
                    await _release(world)
        finally:
            await asyncio.to_thread(stack.stop)
    report.seconds = time.perf_counter() - started
    return report
