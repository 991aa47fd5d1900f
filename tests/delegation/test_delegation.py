"""The agent as a principal: every check for a user also needs that user's delegation to it."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from auth.audit import AuditEvent, AuditLog, audit_location
from auth.delegation import (
    DelegatedFGA,
    DelegationError,
    agent_principal,
    delegations,
    for_agent,
    grant,
    revoke,
)
from auth.fga.client import CheckRequest, TupleKey
from cli.main import app
from settings import get_settings
from tests.delegation.conftest import AGENT, ALICE, BOB, Chunks
from vectorstore.retriever import FGARetriever

DOCS = ["doc:alice-plan", "doc:alice-notes", "doc:shared", "doc:bob-secret"]


async def visible(agent: DelegatedFGA, user: str) -> set[str]:
    answers = await agent.batch_check([CheckRequest(user, "can_view", d) for d in DOCS])
    return {d for d, a in zip(DOCS, answers, strict=True) if a.allowed}


async def test_nothing_delegated_means_nothing(fga, clock):
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert await fga.check(ALICE, "can_view", "doc:alice-plan")  # the user may ...
    assert not await agent.check(ALICE, "can_view", "doc:alice-plan")  # ... the agent may not
    assert await agent.list_objects(ALICE, "can_view", "doc") == []
    assert await visible(agent, ALICE) == set()


async def test_everything_delegated_is_exactly_what_the_user_sees(fga, clock):
    await grant(fga, ALICE, AGENT, clock=clock)
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert await visible(agent, ALICE) == {"doc:alice-plan", "doc:alice-notes", "doc:shared"}
    assert sorted(await agent.list_objects(ALICE, "can_view", "doc")) == sorted(
        await fga.list_objects(ALICE, "can_view", "doc")
    )
    # bob delegated nothing: alice's grant lends nothing to the agent acting for bob
    assert await visible(agent, BOB) == set()


async def test_documents_and_folders_are_delegated_one_by_one(fga, clock):
    await grant(fga, ALICE, AGENT, documents=["alice-plan"], folders=["hr"], clock=clock)
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert await visible(agent, ALICE) == {"doc:alice-plan", "doc:alice-notes"}
    assert sorted(await agent.list_objects(ALICE, "can_view", "doc")) == [
        "doc:alice-notes",
        "doc:alice-plan",
    ]


async def test_a_shared_document_delegated_by_one_user_is_not_delegated_for_another(fga, clock):
    await grant(fga, ALICE, AGENT, documents=["shared"], clock=clock)
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert await agent.check(ALICE, "can_view", "doc:shared")
    assert await fga.check(BOB, "can_view", "doc:shared")  # bob may see it himself
    assert not await agent.check(BOB, "can_view", "doc:shared")


async def test_delegation_does_not_add_to_what_the_user_holds(fga, clock):
    # a tuple forged straight into the store: the agent "delegated" bob's document for alice
    principal = agent_principal(AGENT, ALICE)
    await fga.write([TupleKey(principal, "delegate", "doc:bob-secret")])
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert not await agent.check(ALICE, "can_view", "doc:bob-secret")
    # and one naming another user's "everything" gives nothing either
    await fga.write([TupleKey(principal, "delegate", BOB)])
    assert await visible(agent, ALICE) == set()


async def test_cannot_delegate_what_you_cannot_see(fga, clock):
    with pytest.raises(DelegationError, match="cannot view"):
        await grant(fga, ALICE, AGENT, documents=["bob-secret"], clock=clock)
    assert await delegations(fga, ALICE, AGENT) == []


async def test_an_expired_grant_says_no(fga, clock):
    await grant(fga, ALICE, AGENT, documents=["alice-plan"], expires_at=clock.now + 60, clock=clock)
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert await agent.check(ALICE, "can_view", "doc:alice-plan")
    clock.now += 61
    assert not await agent.check(ALICE, "can_view", "doc:alice-plan")
    assert await agent.list_objects(ALICE, "can_view", "doc") == []
    with pytest.raises(DelegationError, match="past"):
        await grant(fga, ALICE, AGENT, expires_at=clock.now - 1, clock=clock)


async def test_an_expired_everything_grant_says_no(fga, clock):
    await grant(fga, ALICE, AGENT, expires_at=clock.now + 60, clock=clock)
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert await visible(agent, ALICE)
    clock.now += 3600
    assert await visible(agent, ALICE) == set()


async def test_regrant_replaces_the_expiry(fga, clock):
    await grant(fga, ALICE, AGENT, documents=["alice-plan"], expires_at=clock.now + 60, clock=clock)
    await grant(fga, ALICE, AGENT, documents=["alice-plan"], clock=clock)
    (only,) = await delegations(fga, ALICE, AGENT)
    assert only.expires_at is None and only.object == "doc:alice-plan"


async def test_revocation_takes_effect_on_the_next_check(fga, clock):
    await grant(fga, ALICE, AGENT, clock=clock)
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    assert await agent.check(ALICE, "can_view", "doc:alice-plan")
    await revoke(fga, ALICE, AGENT)
    assert not await agent.check(ALICE, "can_view", "doc:alice-plan")
    with pytest.raises(DelegationError, match="no such delegation"):
        await revoke(fga, ALICE, AGENT)


async def test_revoked_between_search_and_final_check_is_not_shown(fga, clock):
    await grant(fga, ALICE, AGENT, documents=["alice-plan", "shared"], clock=clock)

    class RevokesAfterList(DelegatedFGA):
        async def list_objects(self, *args, **kwargs):
            found = await super().list_objects(*args, **kwargs)
            await revoke(fga, ALICE, AGENT, documents=["shared"])  # mid-run
            return found

    retriever = FGARetriever(
        user=ALICE,
        fga=RevokesAfterList(fga, AGENT, clock=clock),
        store=Chunks(["shared", "alice-plan", "bob-secret"]),
        k=3,
    )
    found = await retriever.search("plan")
    assert [d.metadata["doc_id"] for d in found.documents] == ["alice-plan"]
    assert found.revoked_docs == {"shared"}


async def test_retrieval_through_the_agent_client(fga, clock):
    store = Chunks(["alice-notes", "shared", "alice-plan", "bob-secret"])
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    empty = await FGARetriever(user=ALICE, fga=agent, store=store, k=4).search("q")
    assert empty.documents == []
    await grant(fga, ALICE, AGENT, folders=["hr"], clock=clock)
    found = await FGARetriever(user=ALICE, fga=agent, store=store, k=4).search("q")
    assert [d.metadata["doc_id"] for d in found.documents] == ["alice-notes"]


async def test_fga_failure_fails_closed(fga, clock):
    class Broken:
        async def check(self, *a, **k):
            raise RuntimeError("down")

        async def batch_check(self, checks):
            return [type("R", (), {"allowed": True, "error": None})() for _ in checks]

    agent = DelegatedFGA(Broken(), AGENT, clock=clock)
    with pytest.raises(RuntimeError):
        await agent.batch_check([CheckRequest(ALICE, "can_view", "doc:alice-plan")])


async def test_errors_on_the_delegation_side_are_a_no(fga, clock):
    await grant(fga, ALICE, AGENT, documents=["alice-plan"], clock=clock)
    agent = DelegatedFGA(fga, AGENT, clock=clock)
    # an object type with no delegation relation: never allowed (unless everything is delegated)
    assert await agent.agent_allowed(ALICE, ["group:eng", "doc:alice-plan"]) == [False, True]


def test_for_agent_follows_the_setting(fga):
    with get_settings.override(delegation_enforced=False) as s:
        assert for_agent(fga, s) is fga
    with get_settings.override(delegation_enforced=True) as s:
        wrapped = for_agent(fga, s)
        assert isinstance(wrapped, DelegatedFGA) and for_agent(wrapped, s) is wrapped


@pytest.mark.parametrize("bad", ["", "a:b", "a#b", "a/b", "a b", "*"])
def test_bad_agent_ids_are_refused(bad):
    with pytest.raises(DelegationError):
        agent_principal(bad, ALICE)


def test_bad_users_are_refused():
    for bad in ["user:*", "group:eng#member", "alice"]:
        with pytest.raises(DelegationError):
            agent_principal(AGENT, bad)


async def test_grants_and_revocations_are_audited(fga, clock):
    await grant(fga, ALICE, AGENT, documents=["alice-plan"], clock=clock)
    await revoke(fga, ALICE, AGENT, documents=["alice-plan"])
    log = AuditLog(audit_location())
    events = [(r.event, r.object, r.act) for r in await log.records()]
    await log.close()
    assert events == [
        (AuditEvent.DELEGATION_GRANTED, "doc:alice-plan", AGENT),
        (AuditEvent.DELEGATION_REVOKED, "doc:alice-plan", AGENT),
    ]


def test_cli_delegate_list_revoke_and_fga_check(tmp_path):
    runner = CliRunner()
    with get_settings.override(data_dir=tmp_path, fga_backend="local"):

        async def seed() -> None:
            from auth.fga.factory import make_fga_client
            from vectorstore.access_model import ensure_document_model

            client = make_fga_client()
            await ensure_document_model(client)
            await client.write([TupleKey(ALICE, "owner", "doc:plan")])
            await client.close()

        asyncio.run(seed())
        ask = ["fga", "check", ALICE, "can_view", "doc:plan", "--agent", AGENT]
        assert json.loads(runner.invoke(app, ask).output) == {"allowed": False}
        who = ["--user", "alice@example.com"]
        out = runner.invoke(app, ["delegate", *who, "--documents", "plan", "--expires", "2h"])
        assert out.exit_code == 0, out.output
        listed = runner.invoke(app, ["delegations", *who, "--json"])
        (row,) = json.loads(listed.output)
        assert row["object"] == "doc:plan" and row["agent"] == AGENT and row["expires_at"]
        assert json.loads(runner.invoke(app, ask).output) == {"allowed": True}
        assert runner.invoke(app, ["revoke", *who, "--documents", "plan"]).exit_code == 0
        assert json.loads(runner.invoke(app, ask).output) == {"allowed": False}
        bad = runner.invoke(app, ["delegate", *who, "--expires", "yesterday"])
        assert bad.exit_code == 2 and "cannot read the expiry" in bad.output
        nope = runner.invoke(app, ["delegate", *who, "--documents", "not-mine"])
        assert nope.exit_code == 1 and "cannot view" in nope.output


async def test_a_wrong_sized_delegation_answer_fails_closed(fga, clock):
    class Short:
        async def check(self, *a, **k):
            return False

        async def batch_check(self, checks):
            return []

    with pytest.raises(DelegationError, match="answered 0"):
        await DelegatedFGA(Short(), AGENT, clock=clock).agent_allowed(ALICE, ["doc:x"])
