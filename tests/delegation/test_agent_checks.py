"""Retrieval and tool relations ask as the agent when delegation is enforced, and the FGA answers
that withheld something are audited."""

from __future__ import annotations

from langchain_core.documents import Document

from auth.audit import AuditEvent, AuditLog, audit_location
from auth.delegation import grant, revoke
from graph.relations import authorized_objects
from settings import get_settings
from tests.delegation.conftest import AGENT, ALICE, Chunks
from tools.base import RelationRequirement
from tools.documents import search_documents


async def _withheld():
    log = AuditLog(audit_location())
    try:
        return await log.records(event=AuditEvent.FGA_CHECK)
    finally:
        await log.close()


async def test_search_needs_the_delegation_when_enforced(fga, clock):
    store = Chunks(["alice-plan", "shared", "bob-secret"])
    with get_settings.override(delegation_enforced=False):
        mine = await search_documents("plan", "alice@example.com", fga=fga, store=store, k=3)
    assert {d.metadata["doc_id"] for d in mine.passages} == {"alice-plan", "shared"}
    with get_settings.override(delegation_enforced=True):
        none = await search_documents("plan", "alice@example.com", fga=fga, store=store, k=3)
        assert none.passages == [] and none.error is None
        await grant(fga, ALICE, AGENT, documents=["shared"])
        some = await search_documents("plan", "alice@example.com", fga=fga, store=store, k=3)
        assert [d.metadata["doc_id"] for d in some.passages] == ["shared"]
        await revoke(fga, ALICE, AGENT)
        again = await search_documents("plan", "alice@example.com", fga=fga, store=store, k=3)
        assert again.passages == []
    rows = await _withheld()
    assert rows and all(r.act == AGENT and r.object == ALICE for r in rows)
    assert all(r.detail["withheld"] >= 1 for r in rows)


async def test_tool_relations_need_the_delegation_when_enforced(fga):
    need = RelationRequirement("can_view", "doc")
    output = [Document("x", metadata={"id": "alice-plan"}), {"id": "alice-notes"}]
    with get_settings.override(delegation_enforced=True):
        assert await authorized_objects(output, need, "alice@example.com", fga=fga) == []
        await grant(fga, ALICE, AGENT, documents=["alice-notes"])
        shown = await authorized_objects(output, need, "alice@example.com", fga=fga)
        assert shown == [{"id": "alice-notes"}]
    (first, second) = await _withheld()
    assert (first.detail["withheld"], second.detail["withheld"]) == (2, 1)
    assert first.tool == "doc"
