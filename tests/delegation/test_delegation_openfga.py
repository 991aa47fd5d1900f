"""Delegation over the production FGA path: the OpenFGA client (openfga-sdk) against the
devstack's OpenFGA HTTP API, with the expiry condition's context on the wire."""

from __future__ import annotations

import pytest

from auth.delegation import DelegatedFGA, delegations, grant, revoke
from auth.fga.client import CheckRequest, TupleKey
from auth.fga.openfga_client import OpenFGA
from auth.fga.store import Store
from devstack.openfga_api import create_openfga_app
from settings import get_settings
from tests.delegation.conftest import AGENT, ALICE, BOB
from tests.fga_api.helpers import ServerThread

pytestmark = pytest.mark.server


@pytest.fixture
def openfga(tmp_path):
    from vectorstore.access_model import document_model

    store = Store(tmp_path / "fga.sqlite3")
    store_id = store.create_store("delegation")
    store.write_model(store_id, document_model())
    app = create_openfga_app(get_settings(), store=store, preshared_keys=[])
    with ServerThread(app) as server:
        yield server.url, store_id
    store.close()


async def test_delegation_through_openfga(openfga, clock):
    url, store_id = openfga
    fga = OpenFGA(url, store_id)
    try:
        await fga.write(
            writes=[
                TupleKey(ALICE, "owner", "doc:plan"),
                TupleKey(ALICE, "owner", "doc:notes"),
                TupleKey(BOB, "viewer", "doc:plan"),
            ]
        )
        agent = DelegatedFGA(fga, AGENT, clock=clock)
        assert not await agent.check(ALICE, "can_view", "doc:plan")
        await grant(fga, ALICE, AGENT, documents=["plan"], expires_at=clock.now + 60, clock=clock)
        (listed,) = await delegations(fga, ALICE, AGENT)
        assert listed.object == "doc:plan" and listed.expires_at == clock.now + 60
        answers = await agent.batch_check(
            [CheckRequest(ALICE, "can_view", d) for d in ("doc:plan", "doc:notes")]
            + [CheckRequest(BOB, "can_view", "doc:plan")]
        )
        assert [a.allowed for a in answers] == [True, False, False]
        assert await agent.list_objects(ALICE, "can_view", "doc") == ["doc:plan"]
        clock.now += 61
        assert not await agent.check(ALICE, "can_view", "doc:plan")
        clock.now -= 61
        await revoke(fga, ALICE, AGENT, documents=["plan"])
        assert not await agent.check(ALICE, "can_view", "doc:plan")
    finally:
        await fga.close()
