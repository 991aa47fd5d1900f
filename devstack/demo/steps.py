"""The demo's steps: each proves one thing end to end and says what it saw in one line.

A step is `async def step(world) -> str` (the detail line on success); it raises `DemoError`
with the detail line when what it proves does not hold. Steps share the devstack and the graph
but not their threads, so each can pass or fail on its own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from devstack.demo.world import DemoError, DemoWorld, interrupts, last_answer

WHO_AM_I = "who am I?"
GITHUB_QUESTION = "show me popular repositories about AI"


def _other(who: str) -> str:
    return "bob" if who == "alice" else "alice"


async def login_step(world: DemoWorld) -> str:
    """alice and bob log in through the provider's real login; each agent knows only its user."""
    seen = []
    for who in ("alice", "bob"):
        answer = await world.answer(who, WHO_AM_I, "login")
        mine, theirs = world.email(who), world.email(_other(who))
        if mine not in answer:
            raise DemoError(f"{who} asked {WHO_AM_I!r} and the answer did not name {mine}")
        if theirs in answer:
            raise DemoError(f"{who}'s answer to {WHO_AM_I!r} named {theirs}")
        seen.append(f"{who} -> {mine}")
    return (
        f"both logged in by authorization code + PKCE at {world.stack.issuer}; "
        f"{WHO_AM_I!r}: {', '.join(seen)}, neither named the other"
    )


def _tool_results(out: dict[str, Any], name: str) -> list[ToolMessage]:
    return [m for m in out.get("messages", []) if isinstance(m, ToolMessage) and m.name == name]


async def _local_github_search(world: DemoWorld, token: str, query: str) -> list[str]:
    """What the local GitHub API itself answers for `query`, as the tool asks it."""
    async with httpx.AsyncClient(base_url=world.settings.github_api_url, timeout=10) as http:
        answer = await http.get(
            "/search/repositories",
            params={"q": query, "per_page": "5", "sort": "stars", "order": "desc"},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
        )
    if answer.status_code != 200:
        raise DemoError(f"the local GitHub API answered HTTP {answer.status_code} to the check")
    return [str(item["full_name"]) for item in answer.json().get("items", [])]


async def github_search_step(world: DemoWorld) -> str:
    """Token Vault: interrupt to connect, connect as alice, real results, no token checkpointed."""
    from auth.token_vault import get_token_vault
    from devstack.identity.connected_accounts import connect_in_browser

    config = world.thread("github")
    out = await world.run("alice", GITHUB_QUESTION, config)
    [first] = interrupts(out) or [{}]
    if first.get("type") != "connection_required":
        raise DemoError(
            f"expected a connection_required interrupt, got {first.get('type') or 'an answer'}"
        )
    connect_url = str(first.get("connect_url") or "")
    if not connect_url.startswith(world.stack.issuer):
        raise DemoError("the interrupt's connect_url does not point at the provider")

    # A resume claiming success is only a nudge: the vault is asked again and still says no.
    out = await world.run("alice", Command(resume="connected"), config)
    if [i.get("type") for i in interrupts(out)] != ["connection_required"]:
        raise DemoError("a resume before connecting got past the connection interrupt")

    try:
        await connect_in_browser(
            connect_url,
            email=world.email("alice"),
            password=world.password("alice"),
            github_login="alice",
            github_password=world.password("alice"),
        )
    except Exception as exc:
        raise DemoError(f"connecting alice's GitHub account failed: {exc}") from None

    out = await world.run("alice", Command(resume="connected"), config)
    if interrupts(out):
        raise DemoError(f"still interrupted after connecting: {interrupts(out)[0].get('type')}")
    results = _tool_results(out, "search_github_repositories")
    if not results or results[-1].status != "success":
        detail = results[-1].content if results else "no tool result"
        raise DemoError(f"the search did not succeed after connecting: {detail}")
    found = json.loads(str(results[-1].content))
    names = [str(repo["full_name"]) for repo in found.get("repositories", [])]
    if not names:
        raise DemoError(f"the local GitHub API found no repositories for {found.get('query')!r}")
    answer = last_answer(out)
    if not all(name in answer for name in names):
        raise DemoError("the answer does not list the repositories the tool found")

    # The same search, asked of the local GitHub API directly with the vault's token for alice.
    ctx = await world.context("alice")
    github = await get_token_vault().get_token(
        user_id=str(ctx.user_id), subject_token=str(ctx.subject_token), connection="github"
    )
    world.remember(github.access_token)
    truth = await _local_github_search(world, github.access_token, str(found.get("query")))
    if names != truth:
        raise DemoError("the repositories listed differ from what the local GitHub API answers")

    # No token (alice's access, refresh and ID tokens, the GitHub token) in what was persisted.
    stored = world.checkpoint_bytes()
    if names[0].encode() not in stored:
        raise DemoError("the checkpoint scan found no trace of the run (scanned the wrong file?)")
    state = repr((await world.graph.aget_state(config)).values)
    leaked = [i for i, s in enumerate(world.secrets) if s.encode() in stored or s in state]
    if leaked:
        raise DemoError(f"{len(leaked)} token(s) found in the checkpointed state")
    return (
        f"interrupted for the GitHub connection; a resume before connecting interrupted again; "
        f"connected as alice; the resumed run listed {len(names)} repositories for "
        f"{found.get('query')!r} ({', '.join(names[:3])}, ...), exactly what the local GitHub "
        f"API answers; none of {len(world.secrets)} tokens in {len(stored)} checkpoint bytes"
    )


async def documents_step(world: DemoWorld) -> str:
    """FGA-filtered retrieval: alice reads her private plan, bob asking the same gets none of it."""
    from vectorstore.demo import DemoIngestError, ingest_demo_corpus_elsewhere
    from vectorstore.demo import documents_step as check_documents

    # This process has handled token responses: the corpus is ingested by one that has not,
    # so no freed token buffer can end up in Chroma's files (see ingest_demo_corpus_elsewhere).
    try:
        outcomes = await ingest_demo_corpus_elsewhere(world.settings)
    except DemoIngestError as exc:
        raise DemoError(str(exc)) from None
    if world.warm_up is not None:
        await asyncio.gather(world.warm_up, return_exceptions=True)

    async def ask(who: str, question: str) -> str:
        return await world.answer(who, question, "documents")

    ok, detail = await check_documents(ask)
    if not ok:
        raise DemoError(detail)
    scanned = await world.assert_no_token_in_chroma()
    return (
        f"{len(outcomes)} documents ingested with their FGA tuples; {detail}; "
        f"none of {len(world.secrets)} tokens in {scanned} Chroma bytes"
    )
