"""Run the offline demo: a throwaway devstack, the agent pointed at it, and every step in turn.

Everything lives in a temporary folder (the provider's keys and users, checkpoints, FGA tuples,
Chroma, the approvals ledger) that is deleted afterwards; the user's own data folder and
settings for the embedded parts are never touched. Only the chat model is taken from settings
(or the caller), and the report names it.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack.demo.report import DemoReport, StepResult, scrub
from devstack.demo.world import DemoError, DemoWorld
from settings import Settings, get_settings

if TYPE_CHECKING:
    from devstack.server import DevStack

log = logging.getLogger(__name__)

Step = Callable[[DemoWorld], Awaitable[str]]
STEP_TIMEOUT_SECONDS = 180.0


def default_steps() -> list[tuple[str, Step]]:
    """The demo's steps, in order (each one independent of the others' outcome)."""
    from devstack.demo.delegation import delegation_step
    from devstack.demo.gist_approval import gist_approval_step
    from devstack.demo.steps import documents_step, github_search_step, login_step

    return [
        ("login", login_step),
        ("github_search", github_search_step),
        ("documents", documents_step),
        ("gist_approval", gist_approval_step),
        ("delegation", delegation_step),
    ]


# The embedded parts, whatever the environment says: the demo needs no account and no network.
EMBEDDED: dict[str, Any] = {
    "fga_backend": "local",
    "chroma_mode": "persistent",
    "embeddings": "local",
    "checkpoint_url": None,
    "approvals_db": None,
    "studio_enabled": False,
    # the gist step switches the agent client to ping delivery for itself
    "ciba_delivery_mode": "poll",
    "ciba_notification_endpoint": None,
    "github_connection": Settings.model_fields["github_connection"].default,
    "token_vault_connect_url": Settings.model_fields["token_vault_connect_url"].default,
}


async def run_step(world: DemoWorld, name: str, step: Step, limit: float) -> StepResult:
    """Run one step; any failure becomes its detail line, and a token in it is a failure too."""
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(step(world), limit)
        ok = True
    except DemoError as exc:
        ok, detail = False, str(exc)
    except TimeoutError:
        ok, detail = False, f"did not finish within {limit:.0f} s"
    except Exception as exc:
        log.warning("demo step %s failed", name, exc_info=True)
        ok, detail = False, f"failed unexpectedly: {type(exc).__name__}: {exc}"
    detail, leaked = scrub(" ".join(str(detail).split()), world.secrets)
    if leaked:
        ok, detail = False, f"a token appeared in this step's output (redacted): {detail}"
    return StepResult(name, ok, detail, time.perf_counter() - started)


async def run_demo(
    *,
    model: str | None = None,
    steps: Sequence[tuple[str, Step]] | None = None,
    step_timeout: float = STEP_TIMEOUT_SECONDS,
    on_step: Callable[[StepResult], None] | None = None,
    log_level: str = "warning",
) -> DemoReport:
    """Start a devstack on ephemeral loopback ports in a temporary folder, log alice and bob in,
    build the graph with SQLite checkpoints there, and run each step; returns the report."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from graph.agent import build_graph
    from graph.model import describe

    chosen = list(steps) if steps is not None else default_steps()
    spec = describe(model if model is not None else get_settings().model)
    report = DemoReport(model=spec)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warrant-demo-") as tmp:
        root = Path(tmp)
        try:
            stack = await start_devstack(spec, root, log_level)
        except (OSError, RuntimeError) as exc:
            record(
                report,
                StepResult("devstack", False, f"the devstack could not start: {exc}"),
                on_step,
            )
            report.seconds = time.perf_counter() - started
            return report
        # Loading the embedding model takes seconds: start it now, beside the first steps.
        warm = (
            asyncio.create_task(asyncio.to_thread(_load_embeddings))
            if any(name in ("documents", "delegation") for name, _ in chosen)
            else None
        )
        try:
            with get_settings.override(**demo_changes(spec, root, stack)) as settings:
                checkpoints = settings.path("checkpoints.sqlite")
                async with AsyncSqliteSaver.from_conn_string(str(checkpoints)) as saver:
                    world = DemoWorld(stack, settings, build_graph(checkpointer=saver), checkpoints)
                    world.warm_up = warm
                    try:
                        await run_steps(world, chosen, report, step_timeout, on_step)
                    finally:
                        await _release(world)
        finally:
            await asyncio.to_thread(stack.stop)
            if warm is not None:
                await asyncio.gather(warm, return_exceptions=True)
    report.seconds = time.perf_counter() - started
    return report


def demo_changes(spec: str, root: Path, stack: DevStack | None = None) -> dict[str, Any]:
    """The settings a demo run uses: the embedded parts, the chosen model, a data folder in
    `root`, and (once it runs) what the devstack's addresses set."""
    changes: dict[str, Any] = {**EMBEDDED, **(stack.overrides if stack is not None else {})}
    changes.update(model=spec, data_dir=root / "agent")
    return changes


async def start_devstack(spec: str, root: Path, log_level: str) -> DevStack:
    """A devstack on ephemeral loopback ports with its data in `root`, started (OSError or
    RuntimeError when it cannot)."""
    from devstack.server import DevStack

    base = get_settings().model_copy(update=demo_changes(spec, root))
    stack = DevStack(base, ephemeral=True, data_dir=root / "devstack", log_level=log_level)
    await asyncio.to_thread(stack.start)
    return stack


def record(
    report: DemoReport, result: StepResult, on_step: Callable[[StepResult], None] | None
) -> None:
    """Add a step's result to the report, and show it to whoever watches."""
    report.steps.append(result)
    if on_step is not None:
        on_step(result)


async def run_steps(
    world: DemoWorld,
    steps: Sequence[tuple[str, Step]],
    report: DemoReport,
    step_timeout: float,
    on_step: Callable[[StepResult], None] | None,
    run: Callable[[Any, str, Step, float], Awaitable[StepResult]] = run_step,
) -> None:
    """Run each step in turn (`run` runs one), recording each result as it comes."""
    for name, step in steps:
        record(report, await run(world, name, step, step_timeout), on_step)


def _load_embeddings() -> None:
    """Load the packaged embedding model (process-wide); a failure shows in the documents step."""
    try:
        from vectorstore.embeddings import local_model

        local_model()
    except Exception:
        log.debug("preloading the embedding model failed", exc_info=True)


async def _release(world: DemoWorld) -> None:
    """Forget what this run cached in process-wide objects (its vault, its approvals clients)."""
    from auth.token_vault import get_token_vault

    get_token_vault().clear()
    try:
        from auth.approvals import close_all
    except ImportError:
        return
    await close_all()
