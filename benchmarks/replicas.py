"""Load and fault test: several server processes on one PostgreSQL, N approvals at once.

`--replicas R` `warrant serve` processes (Aegra) share one fresh PostgreSQL database (runs,
threads, checkpoints, the approvals ledger, wake claims). N users, each with a thread on one of
the replicas (round robin), ask for a public Gist, so N approvals are pending at once. The
users approve in random order (`--rate` per second). The provider's pings go through a small
load balancer that forwards each to a random replica (to another one when that one does not
answer, as a real balancer's retry would) and delivers a third of them twice. Half-way
through the approvals one replica is killed with SIGKILL and restarted.

Counted at the ends (not in the agent): `pushes` = CIBA requests the provider received,
`gists` = Gists the local GitHub holds with the users' markers, `duplicates` = Gists beyond one
per user, `lost` = approved users without a Gist when the run ends. `approval_to_done_ms` =
the ledger's `done` time minus the moment of the approval at the provider. The same scenario
then runs through one `langgraph dev` (its in-memory runtime; no kill: a killed `langgraph dev`
loses every thread) for comparison.

Run: `python benchmarks/replicas.py --threads 200 --replicas 2`; writes
benchmarks/results/replicas.json. Needs PostgreSQL (`--postgres`, default the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, latency_stats, prepare_environment, write_results

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
STARTUP_SECONDS = 180.0
EXECUTING_QUIET_SECONDS = 60.0


# ------------------------------------------------------------------ PostgreSQL databases


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def postgres_reachable(admin_url: str) -> str | None:
    """None when PostgreSQL answers at `admin_url`; otherwise why not."""
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {admin_url}: {type(exc).__name__}"
    return None


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "warrant") -> Iterator[str]:
    """A new, empty database `<prefix>_<random>` for one run; dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------ server processes


@dataclass
class Replica:
    """One server process (Aegra via `warrant serve`, or `langgraph dev`)."""

    index: int
    port: int
    folder: Path
    env: dict[str, str]
    kind: str
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"server-{self.starts}.log"

    def _command(self) -> list[str]:
        if self.kind == "aegra":
            return [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port)]
        from devstack.demo.langgraph_dev import langgraph_dev_command

        return langgraph_dev_command(self.port)

    def start(self) -> None:
        self.starts += 1
        cwd = self.folder / "cwd"
        if not cwd.exists():
            if self.kind == "langgraph_dev":
                from devstack.demo.langgraph_dev import link_project

                link_project(cwd, ROOT)
            else:
                cwd.mkdir(parents=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self._command(),
                cwd=cwd if self.kind == "langgraph_dev" else ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> float:  # noqa: ASYNC109
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() - started < timeout:
                if self.process is not None and self.process.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/warrant/health")).status_code == 200:
                        return time.monotonic() - started
                await asyncio.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        code = self.process.poll() if self.process is not None else None
        raise RuntimeError(f"replica {self.index} did not become healthy (exit {code}):\n{tail}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no cleanup, as a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        from devstack.demo.langgraph_dev import stop_process_group

        if self.process is not None:
            stop_process_group(self.process, timeout=20)


def child_environment(stack: Any, extra: dict[str, str]) -> dict[str, str]:
    from devstack.demo.langgraph_dev import LOGGED_OFFLINE_ENV, inherited_environment

    env = inherited_environment(drop_prefixes=("OPENAI_", "AEGRA_"), drop=("DATABASE_URL",))
    env.update(stack.env())
    env.update(LOGGED_OFFLINE_ENV)
    env["WARRANT_MODEL"] = "offline"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def fleet(
    stack: Any,
    folder: Path,
    count: int,
    *,
    kind: str,
    database_url: str,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[list[Replica]]:
    """`count` server processes configured for `stack`, sharing `database_url`."""
    from devstack.demo.langgraph_dev import free_port

    replicas = []
    for index in range(count):
        port = free_port()
        extra = {
            "WARRANT_DATA_DIR": str(folder / f"replica-{index}" / "data"),
            "WARRANT_APPROVALS_DB": database_url,
            "WARRANT_CIBA_DELIVERY_MODE": "ping",
            "WARRANT_LOG_LEVEL": "WARNING",
        }
        if kind == "aegra":
            extra.update(
                {
                    "WARRANT_DATABASE_URL": database_url,
                    "WARRANT_SERVE_PORT": str(port),
                    "WARRANT_REPLICA_ID": f"replica-{index}",
                    "LOG_LEVEL": "WARNING",
                }
            )
        extra.update(extra_env or {})
        replica_folder = folder / f"replica-{index}"
        replica_folder.mkdir(parents=True, exist_ok=True)
        replicas.append(Replica(index, port, replica_folder, child_environment(stack, extra), kind))
    try:
        for replica in replicas:
            replica.start()
        await asyncio.gather(*(replica.wait_healthy() for replica in replicas))
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


# ------------------------------------------------------------------ the load balancer


@dataclass
class Balancer:
    """Forwards the provider's pings to a random replica, a third of them twice."""

    targets: list[str]
    rng: random.Random
    twice_ratio: float = 1 / 3
    forwarded: int = 0
    duplicated: int = 0
    rerouted: int = 0
    failed: int = 0
    _tasks: set[asyncio.Task] = field(default_factory=set)

    async def _send(self, http: httpx.AsyncClient, body: bytes, headers: dict) -> int:
        order = self.targets[:]
        self.rng.shuffle(order)
        for attempt, target in enumerate(order):
            try:
                response = await http.post(
                    target + "/warrant/ciba/callback", content=body, headers=headers
                )
            except httpx.TransportError:  # that backend is down: the next one (as a balancer)
                self.rerouted += attempt == 0
                continue
            return response.status_code
        self.failed += 1
        return 502

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        http = httpx.AsyncClient(timeout=30.0)

        async def forward(request: Request) -> Response:
            body = await request.body()
            headers = {
                "Authorization": request.headers.get("authorization", ""),
                "Content-Type": "application/json",
            }
            self.forwarded += 1
            status = await self._send(http, body, headers)
            if self.rng.random() < self.twice_ratio:
                self.duplicated += 1
                task = asyncio.create_task(self._send(http, body, headers))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return Response(status_code=status)

        return Starlette(routes=[Route("/warrant/ciba/callback", forward, methods=["POST"])])


# ------------------------------------------------------------------ users


@dataclass
class LoadUser:
    email: str
    sub: str
    token: str
    marker: str
    replica: int = 0
    thread_id: str = ""
    approval_id: str = ""
    approved_at: float = 0.0


async def make_users(stack: Any, count: int, tag: str, concurrency: int = 6) -> list[LoadUser]:
    """`count` new users at the devstack provider, logged in, each connected to GitHub."""
    from devstack.identity.autologin import login
    from devstack.identity.connected_accounts import connect_in_browser
    from devstack.identity.users import make_user, subject_for

    s = stack.settings
    github_password = s.alice_password.get_secret_value()
    connect_url = s.token_vault_connect_url.format(
        issuer=stack.issuer.rstrip("/") + "/", connection="github", scopes="gist"
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> LoadUser:
        email = f"load-{tag}-{i}@example.com"
        password = f"pw-{uuid.uuid4().hex}"
        stack.provider.users.add(make_user(email, f"Load User{i}", password))
        async with gate:
            tokens = await login(
                stack.issuer, email, password, client_id=s.cli_client_id, audience=s.audience
            )
            await connect_in_browser(
                connect_url,
                email=email,
                password=password,
                github_login="alice",  # the local GitHub's account; gists are told by marker
                github_password=github_password,
            )
        return LoadUser(email, subject_for(email), tokens.access_token, f"load-{uuid.uuid4().hex}")

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def gist_markers(stack: Any) -> collections.Counter[str]:
    """How many Gists at the local GitHub carry each file content."""
    store = stack._services["github"].app.state.store
    found: collections.Counter[str] = collections.Counter()
    for (body,) in store._run("SELECT body FROM gists"):
        for item in json.loads(body)["files"].values():
            found[item.get("content")] += 1
    return found


# ------------------------------------------------------------------ the scenario


async def _ask(http: httpx.AsyncClient, url: str, user: LoadUser, name: str) -> None:
    headers = {"Authorization": f"Bearer {user.token}"}
    response = await http.post(url + "/threads", json={}, headers=headers)
    response.raise_for_status()
    user.thread_id = response.json()["thread_id"]
    ask = f'create a public gist named {name}.md with content "{user.marker}"'
    response = await http.post(
        f"{url}/threads/{user.thread_id}/runs/wait",
        json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": ask}]}},
        headers=headers,
    )
    response.raise_for_status()


async def scenario(
    stack: Any,
    replicas: list[Replica],
    users: list[LoadUser],
    ledger_url: str,
    *,
    seed: int,
    rate: float,
    kill: str | None,
    settle_seconds: float,
    ask_concurrency: int = 12,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Ask, approve, (kill and restart), and count; see the module docstring."""
    from auth.approvals_ledger import ApprovalsLedger, ApprovalStatus
    from devstack.serving import serving

    rng = random.Random(seed)
    ciba = stack.provider.extensions["ciba"]
    agent_id = stack.settings.agent_client_id
    balancer = Balancer([r.url for r in replicas], random.Random(seed + 1))
    ledger = ApprovalsLedger(ledger_url)
    before = ciba.delivery(agent_id)
    restart: asyncio.Task | None = None
    killed_at = restarted_after = None
    try:
        async with serving(balancer.app(), name="the load balancer") as lb_url:
            ciba.set_delivery(agent_id, "ping", lb_url + "/warrant/ciba/callback")
            gate = asyncio.Semaphore(ask_concurrency)
            started = time.monotonic()

            async def ask(i: int, user: LoadUser) -> None:
                user.replica = i % len(replicas)
                async with gate, httpx.AsyncClient(timeout=300.0) as http:
                    await _ask(http, replicas[user.replica].url, user, f"load-{i}")

            await asyncio.gather(*(ask(i, u) for i, u in enumerate(users)))
            ask_seconds = time.monotonic() - started
            for user in users:
                [record] = await ledger.history(user_id=user.sub, limit=5)
                user.approval_id = record.id
            pending = [u for u in users if len(ciba.pending(u.sub)) == 1]
            log(f"{len(pending)}/{len(users)} approvals pending at once ({ask_seconds:.1f} s)")

            order = users[:]
            rng.shuffle(order)
            half = len(order) // 2
            for n, user in enumerate(order):
                if kill and n == half:
                    if kill == "quiescent":  # no run in flight on any replica when it dies
                        await _until_final(ledger, order[:half], settle_seconds)
                    victim = replicas[0]
                    victim.kill()
                    killed_at = time.monotonic()
                    log(f"killed replica 0 (SIGKILL) after {half} approvals")
                    victim.start()

                    restart = asyncio.create_task(_back_up(victim, killed_at))
                [request] = ciba.pending(user.sub)
                user.approved_at = time.time()
                ciba.decide(request.id, user.sub, True)
                await asyncio.sleep(1.0 / rate)
            if restart is not None:
                restarted_after = await restart
                log(f"replica 0 answered again {restarted_after:.1f} s after the kill")
            records = await _until_final(ledger, users, settle_seconds)
            await ciba.flush()
            await asyncio.gather(*balancer._tasks, return_exceptions=True)
    finally:
        ciba.set_delivery(agent_id, *before)
        await ledger.close()

    markers = gist_markers(stack)
    per_user = [markers.get(u.marker, 0) for u in users]
    statuses = collections.Counter(r.status.value for r in records.values())
    latencies = [
        records[u.approval_id].updated_at - u.approved_at
        for u in users
        if records[u.approval_id].status is ApprovalStatus.DONE
    ]
    stats = latency_stats(latencies) if latencies else {}
    return {
        "threads": len(users),
        "replicas": len(replicas),
        "pushes": sum(len(ciba.requests(u.sub)) for u in users),
        "gists": sum(per_user),
        "duplicates": sum(max(0, c - 1) for c in per_user),
        "lost": sum(1 for c in per_user if c == 0),
        "approval_to_done_ms": {
            "p50": stats.get("median_ms"),
            "p95": stats.get("p95_ms"),
            "mean": stats.get("mean_ms"),
            "max": stats.get("max_ms"),
        },
        "ledger_statuses": dict(statuses),
        "pings_forwarded": balancer.forwarded,
        "pings_delivered_twice": balancer.duplicated,
        "pings_rerouted_from_a_dead_replica": balancer.rerouted,
        "pings_undeliverable": balancer.failed,
        "kill": kill,
        "replica_restart_seconds": round(restarted_after, 1) if restarted_after else None,
        "ask_phase_seconds": round(ask_seconds, 1),
        "approval_rate_per_second": rate,
    }


async def _back_up(replica: Replica, killed_at: float) -> float:
    """Seconds from the kill until the restarted replica answers."""
    await replica.wait_healthy()
    return time.monotonic() - killed_at


async def _until_final(ledger: Any, users: list[LoadUser], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    """The users' ledger records once each is final (or `timeout` seconds have passed)."""
    deadline = time.monotonic() + timeout
    records: dict[str, Any] = {}
    quiet_since, last = time.monotonic(), None
    while True:
        for user in users:
            record = records.get(user.approval_id)
            if record is None or not record.is_final:
                records[user.approval_id] = await ledger.get(user.approval_id)
        open_ = sorted((r.id, r.status.value) for r in records.values() if not r.is_final)
        if open_ != last:
            quiet_since, last = time.monotonic(), open_
        # `executing` after a kill stays so for ever (at most once: never run again); once
        # only those remain, unchanged for a while, waiting longer shows nothing new.
        stuck = all(status == "executing" for _, status in open_)
        if (
            not open_
            or time.monotonic() > deadline
            or (stuck and time.monotonic() - quiet_since > EXECUTING_QUIET_SECONDS)
        ):
            return records
        await asyncio.sleep(0.2)


async def run_one(
    stack: Any,
    folder: Path,
    admin_url: str,
    *,
    kind: str,
    threads: int,
    replicas: int,
    seed: int,
    rate: float,
    kill: str | None,
    settle_seconds: float,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One whole run: a fresh database, the servers, the users, the scenario."""
    tag = uuid.uuid4().hex[:6]
    with fresh_database(admin_url) as database_url:
        async with fleet(
            stack, folder / f"{kind}-{tag}", replicas, kind=kind, database_url=database_url
        ) as servers:
            log(f"{replicas} {kind} server(s) up; creating {threads} users")
            users = await make_users(stack, threads, tag)
            result = await scenario(
                stack,
                servers,
                users,
                database_url,
                seed=seed,
                rate=rate,
                kill=kill,
                settle_seconds=settle_seconds,
                log=log,
            )
    result["server"] = "aegra-api 0.6.0 (warrant serve)" if kind == "aegra" else "langgraph dev"
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from devstack.server import DevStack
    from settings import get_settings

    why = postgres_reachable(args.postgres)
    if why:
        raise SystemExit(why)
    folder = Path(tempfile.mkdtemp(prefix="warrant-bench-replicas-"))
    with DevStack(get_settings(), ephemeral=True, data_dir=folder / "devstack") as stack:
        common = {"threads": args.threads, "seed": args.seed, "rate": args.rate}
        settle = 120.0 + args.threads
        aegra = await run_one(
            stack,
            folder,
            args.postgres,
            kind="aegra",
            replicas=args.replicas,
            kill=None if args.no_kill else "inflight",
            settle_seconds=settle,
            **common,
        )
        print(json.dumps(aegra, indent=2), flush=True)
        baseline = None
        if not args.no_compare:
            baseline = await run_one(
                stack,
                folder,
                args.postgres,
                kind="langgraph_dev",
                replicas=1,
                kill=None,
                settle_seconds=settle,
                **common,
            )
            print(json.dumps(baseline, indent=2), flush=True)
    return {
        "benchmark": "replicas",
        "what": "N users approve N pending Gists on R server processes sharing PostgreSQL; "
        "pings via a balancer (a third twice); one replica SIGKILLed and restarted mid-way",
        **{k: aegra[k] for k in ("threads", "replicas", "pushes", "gists", "duplicates", "lost")},
        "approval_to_done_ms": aegra["approval_to_done_ms"],
        "aegra": aegra,
        "langgraph_dev": baseline,
        "seed": args.seed,
        "machine_cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rate", type=float, default=10.0, help="approvals per second")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin connection URL")
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument("--no-compare", action="store_true", help="skip the langgraph dev run")
    parser.add_argument("--name", default="replicas", help="results file name (no .json)")
    args = parser.parse_args()
    prepare_environment()
    result = asyncio.run(run(args))
    result["approval_rate_per_second"] = args.rate
    path = write_results(args.name, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
