"""Benchmark: from the user's approval at the provider to the approved tool's completion.

Against the devstack (local identity provider with CIBA, local GitHub, real HTTP on loopback),
the agent graph on a SQLite checkpoint, `create_public_gist` behind an approval. Three ways of
noticing the approval, measured in the same run, in interleaved rounds:
- `ping`: the provider POSTs the agent's callback route (served in this process); the route
  wakes the thread and the `approval` node collects the grant and runs the tool;
- `poll`: `ApprovalPoller` reads the ledger's due requests (0.5 s tick) and wakes each thread
  when the provider's interval (5 s, CIBA's default) has elapsed;
- `scan_baseline`: no ledger work list: every 5 s, list every thread in the checkpointer and
  resume each one that is interrupted (the naive resumer).
In each round the approval comes after a random delay (uniform within one interval, seeded), so
that the polling phase is sampled fairly. Latency = the ledger's `done` timestamp minus the
moment of the approval. Also counted: token-endpoint polls per approval (at the provider) and
threads inspected by the scanner.

Run: `python benchmarks/approvals.py [--rounds 6]`; writes benchmarks/results/approvals.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import jwt_subject, latency_stats, prepare_environment, write_results

prepare_environment()

MODES = ("ping", "poll", "scan_baseline")
SCAN_EVERY = 5.0


class Scanner:
    """The naive baseline: every `every` seconds, resume every interrupted thread."""

    def __init__(self, graph: Any, saver: Any, context: Any, every: float) -> None:
        self.graph, self.saver, self.context, self.every = graph, saver, context, every
        self.enabled = False
        self.threads_inspected = 0
        self.resumes = 0

    async def run(self, stop: asyncio.Event) -> None:
        from langgraph.types import Command

        from graph.resumer import WAKE

        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
            if stop.is_set() or not self.enabled:
                continue
            threads = {
                cp.config["configurable"]["thread_id"] async for cp in self.saver.alist(None)
            }
            for thread_id in threads:
                config = {"configurable": {"thread_id": thread_id}}
                self.threads_inspected += 1
                if (await self.graph.aget_state(config)).interrupts:
                    self.resumes += 1
                    await self.graph.ainvoke(Command(resume=WAKE), config, context=self.context)


async def run(rounds: int, seed: int) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from starlette.applications import Starlette

    from auth.approvals import close_all, get_ledger
    from auth.approvals_ledger import ApprovalStatus
    from auth.token_vault import get_token_vault
    from devstack.identity.autologin import login
    from devstack.identity.connected_accounts import connect_in_browser
    from devstack.server import DevStack
    from devstack.serving import serving
    from graph.agent import build_graph
    from graph.callbacks import CALLBACK_PATH, routes
    from graph.context import Context
    from graph.resumer import ApprovalPoller, GraphResumer, set_resumer
    from settings import get_settings

    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="warrant-bench-approvals-"))
    with (
        DevStack(get_settings(), ephemeral=True, data_dir=folder / "devstack") as stack,
        get_settings.override(
            **stack.overrides, approvals_db=str(folder / "approvals.sqlite3")
        ) as s,
    ):
        ciba = stack.provider.extensions["ciba"]
        interval = float(ciba.interval)
        password = s.alice_password.get_secret_value()
        tokens = await login(
            stack.issuer,
            "alice@example.com",
            password,
            client_id=s.cli_client_id,
            audience=s.audience,
        )
        await connect_in_browser(
            get_token_vault().connect_url("github", ["gist"]),
            email="alice@example.com",
            password=password,
            github_login="alice",
            github_password=password,
        )
        sub = jwt_subject(tokens.access_token)
        ctx = Context(
            user_id=sub, user_email="alice@example.com", subject_token=tokens.access_token
        )
        samples: dict[str, list[float]] = {m: [] for m in MODES}
        polls: dict[str, list[int]] = {m: [] for m in MODES}
        stop = asyncio.Event()
        async with (
            AsyncSqliteSaver.from_conn_string(str(folder / "checkpoints.sqlite")) as saver,
            serving(Starlette(routes=routes), name="the agent's callback route") as url,
        ):
            graph = build_graph(checkpointer=saver)
            set_resumer(GraphResumer(graph))  # the callback's resumes carry no user token
            poller = ApprovalPoller(GraphResumer(graph, context=ctx), tick=0.5)
            scanner = Scanner(graph, saver, ctx, SCAN_EVERY)
            poller_enabled = asyncio.Event()

            async def poll_loop() -> None:
                while not stop.is_set():
                    if poller_enabled.is_set():
                        await poller.run_once()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), poller.tick)

            background = [asyncio.create_task(poll_loop()), asyncio.create_task(scanner.run(stop))]
            ledger = await get_ledger()
            try:
                for n in range(rounds):
                    for mode in MODES:
                        ping = mode == "ping"
                        ciba.set_delivery(
                            s.agent_client_id, "ping" if ping else "poll", url + CALLBACK_PATH
                        )
                        with get_settings.override(ciba_delivery_mode="ping" if ping else "poll"):
                            config = {"configurable": {"thread_id": f"{mode}-{n}"}}
                            ask = (
                                f"create a public gist named {mode}-{n}.md with content "
                                f'"benchmark {uuid.uuid4().hex}"'
                            )
                            out = await graph.ainvoke(
                                {"messages": [("user", ask)]}, config, context=ctx
                            )
                            approval_id = out["__interrupt__"][0].value["approval_id"]
                            record = await ledger.get(approval_id)
                            poller_enabled.set() if mode == "poll" else poller_enabled.clear()
                            scanner.enabled = mode == "scan_baseline"
                            await asyncio.sleep(rng.uniform(0.0, interval))
                            approved_at = time.time()
                            ciba.decide(record.auth_req_id, sub, True)
                            deadline = time.monotonic() + 4 * interval + 10
                            while True:
                                record = await ledger.get(approval_id)
                                if record.status is ApprovalStatus.DONE:
                                    break
                                if record.is_final or time.monotonic() > deadline:
                                    raise RuntimeError(f"{mode} round {n}: {record.status}")
                                await asyncio.sleep(0.005)
                            samples[mode].append(record.updated_at - approved_at)
                            polls[mode].append(ciba.stats(record.auth_req_id)["polls"])
                            print(
                                f"round {n} {mode:>13}: {1000 * samples[mode][-1]:8.1f} ms, "
                                f"{polls[mode][-1]} token-endpoint polls",
                                flush=True,
                            )
                        poller_enabled.clear()
                        scanner.enabled = False
            finally:
                stop.set()
                await asyncio.gather(*background, return_exceptions=True)
                set_resumer(None)
                await close_all()

    stats = {mode: latency_stats(samples[mode]) for mode in MODES}
    ping_mean, ping_median = stats["ping"]["mean_ms"], stats["ping"]["median_ms"]
    return {
        "benchmark": "approvals",
        "what": "seconds from the approval at the provider to the approved tool's completion",
        "rounds": rounds,
        "seed": seed,
        "provider_interval_s": interval,
        "poller_tick_s": 0.5,
        "scan_every_s": SCAN_EVERY,
        "latency": stats,
        "ratio_poll_vs_ping_mean": round(stats["poll"]["mean_ms"] / ping_mean, 1),
        "ratio_poll_vs_ping_median": round(stats["poll"]["median_ms"] / ping_median, 1),
        "ratio_scan_vs_ping_mean": round(stats["scan_baseline"]["mean_ms"] / ping_mean, 1),
        "ratio_scan_vs_ping_median": round(stats["scan_baseline"]["median_ms"] / ping_median, 1),
        "ratio_scan_vs_poll_mean": round(
            stats["scan_baseline"]["mean_ms"] / stats["poll"]["mean_ms"], 2
        ),
        "token_endpoint_polls_per_approval_mean": {
            mode: round(statistics.fmean(polls[mode]), 2) for mode in MODES
        },
        "scanner_threads_inspected": scanner.threads_inspected,
        "scanner_resumes": scanner.resumes,
        "poller_wakes": poller.wakes,
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    ns = parser.parse_args()
    result = asyncio.run(run(ns.rounds, ns.seed))
    write_results("approvals", result)
    print(json.dumps(result, indent=2))
    lat = result["latency"]
    print(
        f"\napproval -> tool done: ping {lat['ping']['median_ms']} ms, "
        f"poll {lat['poll']['median_ms']} ms (x{result['ratio_poll_vs_ping_median']}), "
        f"scan every {SCAN_EVERY:g} s {lat['scan_baseline']['median_ms']} ms "
        f"(x{result['ratio_scan_vs_ping_median']}) (medians)"
    )


if __name__ == "__main__":
    main()
