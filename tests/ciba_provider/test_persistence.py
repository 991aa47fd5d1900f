"""A devstack restart keeps CIBA requests: pending ones can still be answered and collected once,
and a ping-mode request still pings after the restart."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest

from auth.errors import ApprovalDenied, ApprovalPending
from settings import get_settings

from .helpers import ALICE, Clock, ciba_client, fresh_provider
from .test_ping import NOTIFICATION_TOKEN, Receiver, serve


async def test_pending_requests_survive_a_restart(tmp_path):
    clock = Clock()
    _, app, ciba = fresh_provider(tmp_path, clock)
    client = ciba_client(app, clock)
    request = await client.start(ALICE, "Create gist notes.md", ["create:gist"])
    with pytest.raises(ApprovalPending):
        await client.poll(request)
    [before] = ciba.pending(ALICE)
    ciba.store.close()

    # a new provider process on the same data folder
    _, app2, ciba2 = fresh_provider(tmp_path, clock)
    [after] = ciba2.pending(ALICE)
    assert after == before
    assert (tmp_path / "devstack" / "ciba.sqlite").stat().st_mode & (
        stat.S_IRWXG | stat.S_IRWXO
    ) == 0
    clock.advance(5)
    client2 = ciba_client(app2, clock)
    with pytest.raises(ApprovalPending):
        await client2.poll(request)
    ciba2.decide(after.id, ALICE, approve=True)
    assert (await client2.poll(request)).access_token
    with pytest.raises(ApprovalDenied):  # redeemed before the next restart: stays redeemed
        await ciba_client(fresh_provider(tmp_path, clock)[1], clock).poll(request)


async def test_a_ping_request_still_pings_after_a_restart(tmp_path):
    clock = Clock()
    _, app, ciba = fresh_provider(tmp_path, clock)
    receiver = Receiver()
    async with serve(receiver) as url:
        ciba.set_delivery(get_settings().agent_client_id, "ping", url)
        request = await ciba_client(app, clock).start(
            ALICE, "Create gist", ["create:gist"], notification_token=NOTIFICATION_TOKEN
        )
        await ciba.aclose()
        ciba.store.close()
        _, _, ciba2 = fresh_provider(tmp_path, clock)
        # client registrations are configuration, not state: the devstack sets them again
        ciba2.set_delivery(get_settings().agent_client_id, "ping", url)
        await asyncio.to_thread(ciba2.decide, request.auth_req_id, ALICE, True)
        await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
        await ciba2.aclose()
    [(headers, body)] = receiver.calls
    assert headers["authorization"] == f"Bearer {NOTIFICATION_TOKEN}"
    assert json.loads(body) == {"auth_req_id": request.auth_req_id}
