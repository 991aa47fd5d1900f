"""The demo's `delegation` step: the agent as its own principal, and a bounded standing approval.

With delegation enforced: alice's agent answers nothing from her private plan until she
delegates it; after `delegate` it answers from it; bob (who delegated nothing and may not see it)
gets none of it; after she revokes, the next answer has none of it. Then alice approves, once, a
standing approval for two public Gists in one conversation (limits shown in the CIBA request's
`authorization_details`): the agent creates two without asking, and asks again for the third.
The audit trail holds every one of these decisions and its hash chain verifies.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from devstack.demo.world import DemoError, DemoWorld, interrupts, last_answer
from settings import get_settings

GIST_TOOL = "create_public_gist"
STANDING_USES = 2


async def _ensure_corpus(world: DemoWorld) -> None:
    """The documents step ingests the corpus; when it did not run, ingest it here."""
    from tools.documents import document_store
    from vectorstore.demo import DemoIngestError, ingest_demo_corpus_elsewhere

    store = await asyncio.to_thread(document_store, world.settings)
    if await asyncio.to_thread(store.count) > 0:
        return
    try:
        await ingest_demo_corpus_elsewhere(world.settings)
    except DemoIngestError as exc:
        raise DemoError(str(exc)) from None
    if world.warm_up is not None:
        await asyncio.gather(world.warm_up, return_exceptions=True)


async def _fga() -> Any:
    from auth.fga.factory import make_fga_client
    from vectorstore.access_model import ensure_document_model

    fga = await asyncio.to_thread(make_fga_client)
    await ensure_document_model(fga)
    return fga


async def _documents_part(world: DemoWorld) -> str:
    from auth.delegation import grant, revoke
    from vectorstore.demo import DEMO_QUESTION, PRIVATE_DOC, PRIVATE_FACT

    await _ensure_corpus(world)
    alice = "user:" + world.email("alice")
    agent = world.settings.agent_client_id
    sub = str((await world.context("alice")).user_id)
    fga = await _fga()
    try:
        before = await world.answer("alice", DEMO_QUESTION, "delegation")
        if PRIVATE_FACT in before:
            raise DemoError("the agent answered from alice's plan before she delegated anything")
        await grant(fga, alice, agent, documents=[PRIVATE_DOC], sub=sub)
        granted = await world.answer("alice", DEMO_QUESTION, "delegation")
        if PRIVATE_FACT not in granted:
            raise DemoError(f"after alice delegated {PRIVATE_DOC}, the answer lacked it")
        bob = await world.answer("bob", DEMO_QUESTION, "delegation")
        if PRIVATE_FACT in bob:
            raise DemoError("bob's agent answered from alice's delegated plan")
        await revoke(fga, alice, agent, documents=[PRIVATE_DOC], sub=sub)
        after = await world.answer("alice", DEMO_QUESTION, "delegation")
        if PRIVATE_FACT in after or PRIVATE_DOC in after:
            raise DemoError("after alice revoked the delegation, the next answer still used it")
    finally:
        await fga.close()
    return (
        f"with delegation enforced, alice's agent had nothing of {PRIVATE_DOC} until she "
        f"delegated it to {agent}, then answered from it ({PRIVATE_FACT}); bob's got none of it; "
        "after she revoked, the next answer had none of it"
    )


async def _decide_when_asked(world: DemoWorld, sub: str, approve: bool) -> dict[str, Any]:
    """Answer the next request at alice's authenticator; what the approver was shown."""
    ciba = world.stack.provider.extensions["ciba"]
    try:
        record = await ciba.wait_for_request(sub, timeout=15)
    except TimeoutError:
        raise DemoError("no standing approval request reached alice's authenticator") from None
    shown = {"binding_message": record.binding_message, "details": record.authorization_details}
    ciba.decide(record.id, sub, approve)
    return shown


async def _ask_gist(world: DemoWorld, config: dict[str, Any], name: str, text: str) -> Any:
    from devstack.demo.gist_approval import _connect_if_asked

    request = f'create a public gist named {name} with content "{text}"'
    return await _connect_if_asked(world, await world.run("alice", request, config), config)


async def _standing_part(world: DemoWorld) -> str:
    from auth.approvals import get_ciba_client
    from auth.standing_approvals import open_standing_approvals, request_standing_approval
    from devstack.demo.gist_approval import _gists_of

    ctx = await world.context("alice")
    sub = str(ctx.user_id)
    config = world.thread("standing")
    thread_id = config["configurable"]["thread_id"]
    marker = uuid.uuid4().hex[:12]
    fga = await _fga()
    store = await asyncio.to_thread(open_standing_approvals, fga)
    try:
        s = get_settings()
        answering = asyncio.create_task(_decide_when_asked(world, sub, approve=True))
        standing = await request_standing_approval(
            await get_ciba_client(s),
            store,
            user_id=sub,
            fga_user="user:" + world.email("alice"),
            tool_name=GIST_TOOL,
            max_uses=STANDING_USES,
            seconds=600,
            thread_id=thread_id,
            audience=s.audience,
            requested_expiry=s.ciba_requested_expiry,
        )
        shown = await answering
        (details,) = shown["details"] or [{}]
        if details.get("max_uses") != STANDING_USES or details.get("tool") != GIST_TOOL:
            raise DemoError(f"the approver was not shown the limits: {details}")
        made = []
        for i in range(1, STANDING_USES + 1):
            out = await _ask_gist(world, config, f"standing-{i}.md", f"Standing {marker} #{i}")
            if interrupts(out):
                kind = interrupts(out)[0].get("type")
                raise DemoError(f"gist {i} of {STANDING_USES} paused ({kind}) under the approval")
            made.append(last_answer(out))
        third = await _ask_gist(world, config, "standing-3.md", f"Standing {marker} #3")
        waiting = interrupts(third)
        if not waiting or waiting[0].get("type") != "approval_pending":
            raise DemoError("the third Gist did not ask for a new approval")
        gists = await _gists_of(world, "alice", f"Standing {marker}")
        if len(gists) != STANDING_USES:
            raise DemoError(
                f"expected {STANDING_USES} Gists under the approval, found {len(gists)}"
            )
        current = await store.get(standing.id)
        if current is None or current.used != STANDING_USES:
            raise DemoError("the standing approval's counter does not say two uses")
        await store.revoke(standing.id, sub)
    finally:
        await store.close()
        await fga.close()
    return (
        f"alice approved once '{shown['binding_message']}' (authorization_details: "
        f"max_uses={details.get('max_uses')}, tool={details.get('tool')}, this thread); the "
        f"agent created {len(gists)} public Gists without asking, and the third paused with "
        "approval_pending"
    )


async def _audit_part(world: DemoWorld) -> str:
    from auth.audit import AuditEvent, AuditLog, audit_location

    log = AuditLog(audit_location())
    try:
        records = await log.records()
        verified = await log.verify()
    finally:
        await log.close()
    kinds = {r.event for r in records}
    wanted = {
        AuditEvent.DELEGATION_GRANTED,
        AuditEvent.DELEGATION_REVOKED,
        AuditEvent.FGA_CHECK,
        AuditEvent.STANDING_APPROVAL_GRANTED,
        AuditEvent.STANDING_APPROVAL_USED,
        AuditEvent.APPROVAL_REQUESTED,
    }
    missing = sorted(e.value for e in wanted - kinds)
    if missing:
        raise DemoError(f"the audit trail lacks {', '.join(missing)}")
    if not verified.ok:
        raise DemoError(f"the audit trail does not verify: {verified.problem}")
    from pathlib import Path

    where = Path(audit_location())
    stored = b"".join(p.read_bytes() for p in where.parent.glob(where.name + "*") if p.is_file())
    if any(secret.encode() in stored for secret in world.secrets):
        raise DemoError("a token was found in the audit trail")
    return (
        f"{len(records)} audit records, hash chain verified, none of "
        f"{len(world.secrets)} tokens in them"
    )


async def delegation_step(world: DemoWorld) -> str:
    """Delegate, answer, revoke, answer; then two Gists under one standing approval, then a third
    that asks again; the audit trail verifies."""
    with get_settings.override(delegation_enforced=True):
        documents = await _documents_part(world)
        standing = await _standing_part(world)
    audit = await _audit_part(world)
    stored = world.checkpoint_bytes()
    if any(secret.encode() in stored for secret in world.secrets):
        raise DemoError("a token was found in the checkpoints")
    return f"{documents}; {standing}; {audit}"
