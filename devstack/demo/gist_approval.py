"""The demo's `gist_approval` step: a public Gist only after alice approves it on another channel.

Alice asks for a public Gist; the run pauses with `approval_pending`; the demo answers as alice's
authenticator (the provider's in-process CIBA handle); the provider pings the agent's callback
route (the HTTP app `langgraph.json` mounts, served here on an ephemeral loopback port, with no
poller running), which resumes the thread; the Gist then exists exactly once at the local GitHub
API, also after the same ping is delivered again. A second request that alice denies ends with
the agent saying it did nothing, and no Gist.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from devstack.demo.world import DemoError, DemoWorld, interrupts, last_answer
from devstack.serving import serving
from settings import get_settings

# what the step needs from the approvals work
REQUIRED_MODULES = (
    "tools.gist",
    "graph.nodes.approval",
    "graph.callbacks",
    "graph.resumer",
    "devstack.identity.ciba",
)
GIST_TOOL = "create_public_gist"
SETTLE_SECONDS = 30.0


def missing_modules() -> list[str]:
    """The modules this step needs that are not in the project (yet)."""
    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            missing.append(name)
    return missing


@contextlib.asynccontextmanager
async def serve_agent_http_app() -> AsyncIterator[str]:
    """Serve the agent's HTTP app (the routes the LangGraph server mounts) on 127.0.0.1:0, in
    this event loop, without its lifespan (no poller: only a ping can wake a thread); yields the
    callback URL."""
    from graph.callbacks import CALLBACK_PATH
    from graph.http_app import create_app

    try:
        async with serving(create_app(), name="the agent's callback route") as base:
            yield f"{base}{CALLBACK_PATH}"
    except RuntimeError as exc:
        raise DemoError(str(exc)) from None


async def _ledger() -> Any:
    """This loop's approvals ledger (`get_ledger` is a coroutine function, or was a plain one)."""
    import inspect

    from auth.approvals import get_ledger

    found = get_ledger()
    return await found if inspect.isawaitable(found) else found


async def _gists_of(world: DemoWorld, who: str, marker: str) -> list[dict[str, Any]]:
    """The gists `who` owns at the local GitHub whose content carries `marker`, read through
    GitHub's own API (`GET /gists`, then each gist) with a Token Vault token for `who`."""
    from auth.token_vault import get_token_vault
    from tools.github_client import GitHubClient

    ctx = await world.context(who)
    github = await get_token_vault().get_token(
        user_id=str(ctx.user_id),
        subject_token=str(ctx.subject_token),
        connection="github",
        scopes=["gist"],
    )
    world.remember(github.access_token)
    client = GitHubClient(world.stack.github_url or "", github.access_token)
    found = []
    for listed in await client.list_gists():
        gist = await client.get_gist(str(listed["id"]))
        if any(marker in str(f.get("content", "")) for f in gist.get("files", {}).values()):
            found.append(gist)
    return found


async def _connect_if_asked(world: DemoWorld, out: dict[str, Any], config: dict[str, Any]) -> Any:
    """Complete a GitHub connect interrupt (the Gist needs the `gist` scope) and resume."""
    from devstack.identity.connected_accounts import connect_in_browser

    for _ in range(2):
        waiting = interrupts(out)
        if not waiting or waiting[0].get("type") != "connection_required":
            return out
        await connect_in_browser(
            str(waiting[0]["connect_url"]),
            email=world.email("alice"),
            password=world.password("alice"),
            github_login="alice",
            github_password=world.password("alice"),
        )
        out = await world.run("alice", Command(resume="connected"), config)
    return out


async def _settled(world: DemoWorld, config: dict[str, Any], resumer: Any, runs: int) -> Any:
    """Wait until the resumer has finished its `runs`-th run and the thread no longer waits;
    the thread's final state."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        snapshot = await world.graph.aget_state(config)
        if len(resumer.results) >= runs and not snapshot.next and not snapshot.interrupts:
            return snapshot
        if time.monotonic() > deadline:
            raise DemoError(
                f"the thread was not resumed within {SETTLE_SECONDS:.0f} s "
                f"({len(resumer.results)} resumed run(s))"
            )
        await asyncio.sleep(0.05)


async def _ask_for_gist(
    world: DemoWorld, content: str, filename: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alice asks for a Gist; returns (thread config, the approval_pending payload)."""
    config = world.thread("gist")
    request = f'create a public gist named {filename} with content "{content}"'
    out = await _connect_if_asked(world, await world.run("alice", request, config), config)
    waiting = interrupts(out)
    if not waiting or waiting[0].get("type") != "approval_pending":
        kind = waiting[0].get("type") if waiting else f"an answer: {last_answer(out)[:160]}"
        raise DemoError(f"expected the run to pause with approval_pending, got {kind}")
    record = await (await _ledger()).get(str(waiting[0].get("approval_id")))
    if record is None or not record.auth_req_id:
        raise DemoError(
            "the run paused with approval_pending, but the approvals ledger holds no request "
            "the provider accepted (no auth_req_id): alice has nothing to approve"
        )
    return config, waiting[0]


async def _decide(world: DemoWorld, payload: dict[str, Any], approve: bool) -> Any:
    """Answer as alice's authenticator: the request with the binding message she was shown."""
    ciba = world.stack.provider.extensions["ciba"]
    sub = str((await world.context("alice")).user_id)
    try:
        record = await ciba.wait_for_request(
            sub, timeout=10, binding_message=payload.get("binding_message")
        )
    except TimeoutError:
        raise DemoError("no pending request at alice's authenticator") from None
    ciba.decide(record.id, sub, approve)
    await ciba.flush()
    return record


def _tool_message(snapshot: Any) -> ToolMessage | None:
    found = [
        m
        for m in snapshot.values.get("messages", [])
        if isinstance(m, ToolMessage) and m.name == GIST_TOOL
    ]
    return found[-1] if found else None


async def _replay_ping(url: str, approval_id: str) -> int:
    """Deliver the same ping again (a replayed callback): the action must not run twice."""
    from auth.approvals import notification_token

    record = await (await _ledger()).get(approval_id)
    if record is None or not record.auth_req_id:
        raise DemoError("the approvals ledger has no record of the approved request")
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            url,
            json={"auth_req_id": record.auth_req_id},
            headers={"Authorization": f"Bearer {notification_token(record.id)}"},
        )
    return answer.status_code


@contextlib.contextmanager
def _ping_delivery(world: DemoWorld, url: str) -> Iterator[Any]:
    """The agent client in ping mode (provider side and agent side), put back afterwards."""
    from graph.resumer import GraphResumer, set_resumer

    ciba = world.stack.provider.extensions["ciba"]
    client_id = world.settings.agent_client_id
    before = ciba.delivery(client_id)
    ciba.set_delivery(client_id, "ping", url)
    # A callback resume has no caller: the graph acts for the recorded user, with the
    # approval's own token (no context).
    resumer = GraphResumer(world.graph)
    set_resumer(resumer)
    try:
        with get_settings.override(ciba_delivery_mode="ping", ciba_notification_endpoint=url):
            yield resumer
    finally:
        set_resumer(None)
        ciba.set_delivery(client_id, before[0], before[1])


Settle = Callable[[dict[str, Any], int], Awaitable[Any]]


async def approve_replay_deny(
    world: DemoWorld,
    url: str,
    *,
    settle: Settle,
    quiesce: Callable[[dict[str, Any]], Awaitable[Any]],
    receiver: str,
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The step's scenario, wherever the graph runs: alice approves one Gist (created once, by
    the resume on the provider's ping to `url`), a replayed ping and a forged resume make no
    second, a second request she denies ends with the agent saying nothing was done.

    `settle(config, runs)`: the thread's final state once the `runs`-th ping resume finished;
    `quiesce(config)`: waits until anything a replay could have started has finished;
    `receiver`: who owns the callback route, for the messages. Returns (the approved request's
    approval_pending payload, its Gist, the replayed ping's HTTP status).
    """
    marker = uuid.uuid4().hex[:12]
    # 1. approved: the ping resumes the thread, the Gist is created once
    config, payload = await _ask_for_gist(world, f"Approved by alice {marker}", "ok.md")
    if await _gists_of(world, "alice", marker):
        raise DemoError("a Gist existed before alice approved it")
    record = await _decide(world, payload, approve=True)
    snapshot = await settle(config, 1)
    ciba = world.stack.provider.extensions["ciba"]
    if ciba.stats(record.id)["pings"] < 1:
        raise DemoError(f"the provider's ping did not reach the {receiver} callback")
    message = _tool_message(snapshot)
    if message is None or message.status == "error":
        text = message.content if message else "no tool result"
        raise DemoError(f"the approved Gist was not created: {text}")
    gists = await _gists_of(world, "alice", f"Approved by alice {marker}")
    if len(gists) != 1 or not gists[0].get("public"):
        raise DemoError(f"expected exactly one public Gist, found {len(gists)}")
    if gists[0]["id"] not in str(message.content):
        raise DemoError("the Gist the agent reported is not the one GitHub holds")

    # 2. the same ping again, and a forged resume: still exactly one Gist
    replay = await _replay_ping(url, str(payload["approval_id"]))
    if replay != 204:  # refused: then it tested nothing
        raise DemoError(f"the replayed ping was not accepted (HTTP {replay})")
    forged = await world.run("alice", Command(resume="approved"), config)
    await quiesce(config)
    after = await _gists_of(world, "alice", f"Approved by alice {marker}")
    if len(after) != 1:
        raise DemoError(f"a replayed ping or a forged resume made {len(after)} Gists")
    if interrupts(forged):
        raise DemoError("a finished thread paused again after a forged resume")

    # 3. denied: the ping resumes the thread, the agent says nothing was done
    denied_text = f"Denied by alice {marker}"
    config2, payload2 = await _ask_for_gist(world, denied_text, "no.md")
    await _decide(world, payload2, approve=False)
    snapshot2 = await settle(config2, 2)
    denied = _tool_message(snapshot2)
    answer = last_answer(snapshot2.values)
    if denied is None or denied.status != "error":
        raise DemoError("the denied request did not end with a refusal")
    if "nothing was done" not in answer.lower() or "denied" not in answer.lower():
        raise DemoError(f"the agent did not say it did nothing: {answer[:200]}")
    if await _gists_of(world, "alice", denied_text):
        raise DemoError("a Gist was created although alice denied it")
    return payload, gists[0], replay


def scenario_detail(payload: dict[str, Any], gist: dict[str, Any], replay: int, route: str) -> str:
    """The step's detail line once `approve_replay_deny` passed; `route`: where the ping went."""
    return (
        f"paused with approval_pending ('{payload['binding_message']}'); alice approved at her "
        f"authenticator; the provider's ping to {route} resumed the thread and exactly one "
        f"public Gist exists ({gist['id'][:8]}); a replayed ping (HTTP {replay}) and a forged "
        "resume made no second; a second request alice denied ended with the agent saying "
        "nothing was done, and no Gist"
    )


async def gist_approval_step(world: DemoWorld) -> str:
    """Approve one Gist (created exactly once, by the ping's resume), deny another (nothing)."""
    missing = missing_modules()
    if missing:
        raise DemoError("not available: missing " + ", ".join(missing))
    async with serve_agent_http_app() as url:
        with _ping_delivery(world, url) as resumer:

            async def settle(config: dict[str, Any], runs: int) -> Any:
                return await _settled(world, config, resumer, runs)

            async def quiesce(_: dict[str, Any]) -> None:
                await asyncio.sleep(0.2)  # anything a replay could have started has had its chance

            payload, gist, replay = await approve_replay_deny(
                world, url, settle=settle, quiesce=quiesce, receiver="agent's"
            )

    stored = world.checkpoint_bytes()
    if any(secret.encode() in stored for secret in world.secrets):
        raise DemoError("a token was found in the checkpoints")
    return scenario_detail(payload, gist, replay, f"/{url.split('/', 3)[-1]}")
