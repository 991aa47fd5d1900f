"""The agent as its own principal: what a user delegated to it, and checks that require both.

Every question the agent asks FGA for a user ("may alice view doc:X?") becomes two, and both must
say yes: the user holds the relation, AND that user delegated the object (or everything) to the
agent. The agent acting for alice is the FGA principal `agent:<agent id>/<alice's id>`: a
delegation is always *from* one user, so alice's grant can never lend anything to the agent while
it acts for bob, even on a document both of them can see.

Delegation tuples (written by the user with `warrant delegate`, see `vectorstore/model.fga`):
- `agent:A/alice delegate user:alice`: everything alice can see;
- `agent:A/alice delegate folder:F` / `doc:D`: that folder (and its subfolders) or document;
- either with the `delegation_window` condition (`expires_at`): checks after it say no.

Nothing is cached: a revocation takes effect on the next check. Any FGA error is a no.

Deployments without delegation tuples: enforcement is `settings.delegation_enforced`. Off, the
agent acts with exactly the user's authority (what Warrant did before; no escalation). On, a user
who delegated nothing gets nothing from the agent (fail closed): `warrant delegate` is the
explicit consent step, and the demo turns enforcement on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from auth.fga.client import CheckRequest, CheckResult, FGAClient, TupleKey, write_in_chunks
from vectorstore.principals import PrincipalError, check_fga_user, fga_doc, fga_folder

log = logging.getLogger(__name__)

AGENT_TYPE = "agent"
DELEGATE = "delegate"
WINDOW = "delegation_window"
DELEGABLE_TYPES = ("user", "folder", "doc")


class DelegationError(ValueError):
    """A delegation that cannot be written, read or revoked as asked (the text says why)."""


def rfc3339(at: float) -> str:
    """A UTC timestamp as FGA's conditions read them."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_agent_id(agent_id: str) -> str:
    """An agent id usable inside an FGA object id (the OAuth client id, usually)."""
    if not agent_id or any(c in agent_id for c in ":#/*") or any(c.isspace() for c in agent_id):
        raise DelegationError(f"invalid agent id {agent_id!r}: no ':', '#', '/', '*' or spaces")
    if len(agent_id) > 100:
        raise DelegationError("invalid agent id: longer than 100 characters")
    return agent_id


def agent_principal(agent_id: str, user: str) -> str:
    """`agent:<agent id>/<user id>`: the agent acting for `user` (`user:<id>`)."""
    try:
        check_fga_user(user)
    except PrincipalError as exc:
        raise DelegationError(str(exc)) from None
    return f"{AGENT_TYPE}:{check_agent_id(agent_id)}/{user.partition(':')[2]}"


def time_context(clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """The request context every delegation check carries (conditions compare against it)."""
    return {"current_time": rfc3339(clock())}


class DelegatedFGA:
    """An `FGAClient` whose answers for `user:<id>` also require that user's delegation to the
    agent; questions about anything but a single user are refused (fail closed)."""

    def __init__(
        self, inner: FGAClient, agent_id: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.inner = inner
        self.agent_id = check_agent_id(agent_id)
        self._clock = clock

    def _principal(self, user: str) -> str:
        return agent_principal(self.agent_id, user)

    async def _delegated_everything(self, user: str, context: dict[str, Any]) -> bool:
        return bool(await self.inner.check(self._principal(user), DELEGATE, user, context=context))

    async def agent_allowed(self, user: str, objects: Sequence[str]) -> list[bool]:
        """For each object: did `user` delegate it (or everything) to the agent, now?"""
        if not objects:
            return []
        context = time_context(self._clock)
        if await self._delegated_everything(user, context):
            return [True] * len(objects)
        principal = self._principal(user)
        asks = [
            CheckRequest(principal, DELEGATE, obj, context=context)
            if obj.partition(":")[0] in DELEGABLE_TYPES
            else None
            for obj in objects
        ]
        real = [a for a in asks if a is not None]
        results = list(await self.inner.batch_check(real)) if real else []
        if len(results) != len(real):
            raise DelegationError(
                f"FGA answered {len(results)} delegation checks for {len(real)} questions"
            )
        answers = iter(results)
        out: list[bool] = []
        for ask in asks:
            if ask is None:  # an object type the model has no delegation for: only `user:`
                out.append(False)
                continue
            result = next(answers)
            if result.error:
                log.warning("delegation check failed closed: %s", result.error)
            out.append(result.allowed is True and not result.error)
        return out

    # FGAClient -------------------------------------------------------------------------------

    async def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> bool:
        if not await self.inner.check(
            user, relation, object, contextual_tuples=contextual_tuples, context=context
        ):
            return False
        return (await self.agent_allowed(user, [object]))[0]

    async def batch_check(self, checks: Sequence[CheckRequest]) -> list[CheckResult]:
        answers = list(await self.inner.batch_check(checks))
        if len(answers) != len(checks):
            return answers  # the caller refuses a wrong-sized answer
        by_user: dict[str, list[int]] = {}
        for i, ask in enumerate(checks):
            if answers[i].allowed and not answers[i].error:
                by_user.setdefault(ask.user, []).append(i)
        for user, positions in by_user.items():
            agent = await self.agent_allowed(user, [checks[i].object for i in positions])
            for i, ok in zip(positions, agent, strict=True):
                if not ok:
                    answers[i] = CheckResult(allowed=False)
        return answers

    async def list_objects(
        self,
        user: str,
        relation: str,
        type: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        mine = await self.inner.list_objects(
            user, relation, type, contextual_tuples=contextual_tuples, context=context
        )
        now = time_context(self._clock)
        if await self._delegated_everything(user, now):
            return list(mine)
        if type not in DELEGABLE_TYPES:
            return []
        delegated = set(
            await self.inner.list_objects(self._principal(user), DELEGATE, type, context=now)
        )
        return [o for o in mine if o in delegated]

    async def list_users(self, *args: Any, **kwargs: Any) -> list[str]:
        raise DelegationError("list_users is not a question the agent asks for one user")

    async def read(
        self, user: str | None = None, relation: str | None = None, object: str | None = None
    ) -> list[TupleKey]:
        return await self.inner.read(user, relation, object)

    async def write(
        self, writes: Sequence[TupleKey] = (), deletes: Sequence[TupleKey] = ()
    ) -> None:
        await self.inner.write(writes, deletes)

    async def close(self) -> None:
        await self.inner.close()


def for_agent(fga: FGAClient, settings: Any = None) -> FGAClient:
    """The client the agent asks with: delegation-checked when the settings enforce it."""
    if settings is None:
        from settings import get_settings

        settings = get_settings()
    if not getattr(settings, "delegation_enforced", False) or isinstance(fga, DelegatedFGA):
        return fga
    return DelegatedFGA(fga, settings.agent_client_id)


# -- the user's side: grant, list, revoke -------------------------------------------------------


@dataclass(frozen=True)
class Delegation:
    """One delegation tuple, as the user sees it."""

    user: str
    agent_id: str
    object: str
    expires_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "agent": self.agent_id,
            "object": self.object,
            "scope": "everything you can see" if self.object == self.user else self.object,
            "expires_at": rfc3339(self.expires_at) if self.expires_at is not None else None,
        }


def _targets(user: str, documents: Sequence[str], folders: Sequence[str]) -> list[str]:
    try:
        objects = [fga_doc(d) for d in documents] + [fga_folder(f) for f in folders]
    except PrincipalError as exc:
        raise DelegationError(str(exc)) from None
    return objects or [user]


def _parse_expiry(context: dict[str, Any] | None) -> float | None:
    value = (context or {}).get("expires_at")
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def grant(
    fga: FGAClient,
    user: str,
    agent_id: str,
    *,
    documents: Sequence[str] = (),
    folders: Sequence[str] = (),
    expires_at: float | None = None,
    clock: Callable[[], float] = time.time,
    by: str = "user",
    sub: str | None = None,
) -> list[Delegation]:
    """Delegate the documents/folders (none: everything `user` can see) to the agent.

    A document the user cannot view is refused: one cannot delegate what one does not hold.
    Re-granting replaces the previous expiry.
    """
    principal = agent_principal(agent_id, user)
    if expires_at is not None and expires_at <= clock():
        raise DelegationError("the expiry is in the past")
    objects = _targets(user, documents, folders)
    for obj in objects:
        kind = obj.partition(":")[0]
        if kind == "doc" and not await fga.check(user, "can_view", obj):
            raise DelegationError(f"you cannot view {obj}, so you cannot delegate it")
        if kind == "folder" and not await fga.check(user, "viewer", obj):
            raise DelegationError(f"you cannot view {obj}, so you cannot delegate it")
    existing = {d.object: d for d in await delegations(fga, user, agent_id)}
    writes, deletes = [], []
    for obj in objects:
        if obj in existing:
            deletes.append(TupleKey(principal, DELEGATE, obj))
        writes.append(
            TupleKey(principal, DELEGATE, obj, WINDOW, {"expires_at": rfc3339(expires_at)})
            if expires_at is not None
            else TupleKey(principal, DELEGATE, obj)
        )
    # OpenFGA refuses one write that deletes and writes the same tuple: delete first (for a
    # moment there is no grant, the safe direction), then write the new one.
    await write_in_chunks(fga, deletes=deletes, writes=writes)
    out = [Delegation(user, agent_id, obj, expires_at) for obj in objects]
    await _audit_each("granted", out, by, sub)
    return out


async def delegations(fga: FGAClient, user: str, agent_id: str) -> list[Delegation]:
    """What `user` delegated to the agent `agent_id` (expired ones included, with their time)."""
    principal = agent_principal(agent_id, user)
    out: list[Delegation] = []
    for obj_type in DELEGABLE_TYPES:
        for t in await fga.read(principal, DELEGATE, f"{obj_type}:"):
            if obj_type == "user" and t.object != user:
                continue  # only the user themself can delegate "everything of mine"
            out.append(Delegation(user, agent_id, t.object, _parse_expiry(t.condition_context)))
    return sorted(out, key=lambda d: d.object)


async def revoke(
    fga: FGAClient,
    user: str,
    agent_id: str,
    *,
    documents: Sequence[str] = (),
    folders: Sequence[str] = (),
    everything: bool = False,
    by: str = "user",
    sub: str | None = None,
) -> list[Delegation]:
    """Remove delegations: the named documents/folders, or all of them (`everything`, or
    nothing named: taking back more than meant is the safe mistake)."""
    current = await delegations(fga, user, agent_id)
    if everything or not (documents or folders):
        gone = current
    else:
        wanted = set(_targets(user, documents, folders))
        gone = [d for d in current if d.object in wanted]
    if not gone:
        raise DelegationError(f"{user} has no such delegation to {agent_id}")
    principal = agent_principal(agent_id, user)
    await write_in_chunks(fga, deletes=[TupleKey(principal, DELEGATE, d.object) for d in gone])
    await _audit_each("revoked", gone, by, sub)
    return gone


async def _audit_each(what: str, items: Sequence[Delegation], by: str, sub: str | None) -> None:
    """One record per tuple; `sub` is the provider's id for the user when known (the CLI's
    login), else the FGA user the delegation is written for."""
    from auth.audit import AuditEvent, note

    event = AuditEvent.DELEGATION_GRANTED if what == "granted" else AuditEvent.DELEGATION_REVOKED
    for d in items:
        await note(
            event,
            what,
            sub=sub or d.user,
            act=d.agent_id,
            object=d.object,
            reason=f"by the {by}",
            detail={"expires_at": rfc3339(d.expires_at) if d.expires_at else None},
        )
