"""Standing approvals through the graph and the devstack: concurrent runs never exceed the limit,
a revocation stops the next action, and a covered call runs with no push."""

from __future__ import annotations

import asyncio
import time
import uuid

from auth.standing_approvals import open_standing_approvals
from tests.approvals.conftest import saved_graph, thread_config, world  # noqa: F401 (fixtures)
from tests.graph.conftest import github_url, provider  # noqa: F401 (fixtures)

ALICE = "user:alice@example.com"


async def _granted(world, max_uses: int):  # noqa: F811
    from vectorstore.access_model import ensure_document_model

    store = open_standing_approvals()
    await ensure_document_model(await store.fga())
    granted = await store.record_approved(
        user_id=world.sub,
        fga_user=ALICE,
        tool_name="create_public_gist",
        max_uses=max_uses,
        expires_at=time.time() + 600,
        thread_id=None,
        reason="test",
    )
    return store, granted


def _thread() -> dict:
    return {"configurable": {"thread_id": f"standing-{uuid.uuid4().hex[:10]}"}}


def _paused(out: dict) -> bool:
    return any(
        isinstance(i.value, dict) and i.value.get("type") == "approval_pending"
        for i in out.get("__interrupt__", ())
    )


async def test_concurrent_runs_never_exceed_the_standing_limit(world, tmp_path):  # noqa: F811
    store, granted = await _granted(world, max_uses=2)
    markers = [f"{world.marker}-{i}" for i in range(5)]
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        outs = await asyncio.gather(
            *(graph.ainvoke(world.ask(marker=m), _thread(), context=world.ctx) for m in markers)
        )
    made = [m for m in markers if world.gists(m) == 1]
    assert len(made) == 2  # exactly the limit, whatever the interleaving
    assert sum(_paused(o) for o in outs) == 3  # the others asked with CIBA instead
    assert sum(world.gists(m) for m in markers) == 2
    assert (await store.get(granted.id)).used == 2
    await store.close()


async def test_revocation_stops_the_next_action(world, tmp_path):  # noqa: F811
    store, granted = await _granted(world, max_uses=5)
    first, second = world.marker + "-1", world.marker + "-2"
    async with saved_graph(tmp_path / "cp.sqlite") as graph:
        out = await graph.ainvoke(world.ask(marker=first), _thread(), context=world.ctx)
        assert not _paused(out) and world.gists(first) == 1
        await store.revoke(granted.id, world.sub)
        out = await graph.ainvoke(world.ask(marker=second), _thread(), context=world.ctx)
        assert _paused(out) and world.gists(second) == 0
    await store.close()
