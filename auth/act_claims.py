"""RFC 8693 `act`: tokens the agent obtains for a user name the user (`sub`) and the agent
(`act.sub`). Warrant checks both on the CIBA grant's access token and records them.

The token must be for the user the approval was asked of, and when it carries an `act` claim
(the provider supports it: the devstack provider does), its `sub` must be this agent's client
id: a token naming another actor is refused (`ApprovalUnverified`), so nothing runs on it. A
nested `act` (a chain of earlier actors) is allowed; only the outermost one acts now. An opaque
(non-JWT) access token carries no claims to read: the approval's ID token, already verified,
names the user, and the record says the actor was not stated.
"""

from __future__ import annotations

import asyncio
from typing import Any

from auth.audit import AuditEvent, agent_id, note
from auth.ciba import ApprovalGranted, ApprovalUnverified
from auth.errors import InvalidToken
from auth.jwt import JWTValidator

ACT = "act"


def actor_of(claims: dict[str, Any]) -> str | None:
    """`act.sub`, None when there is no `act`; a malformed `act` is an error."""
    act = claims.get(ACT)
    if act is None:
        return None
    sub = act.get("sub") if isinstance(act, dict) else None
    if not isinstance(sub, str) or not sub:
        raise ApprovalUnverified("its access token has a malformed act claim")
    return sub


def check_parties(claims: dict[str, Any], *, user_id: str, agent: str) -> str | None:
    """The actor named by `claims`, after checking that they are `user_id` and `agent`."""
    if claims.get("sub") != user_id:
        raise ApprovalUnverified("its access token is for another user")
    actor = actor_of(claims)
    if actor is not None and actor != agent:
        raise ApprovalUnverified("its access token names another agent as the actor")
    return actor


_validators: dict[int, JWTValidator] = {}


def _validator() -> JWTValidator:
    key = id(asyncio.get_running_loop())
    found = _validators.get(key)
    if found is None:
        found = _validators[key] = JWTValidator.from_settings()
    return found


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


async def verify_grant_parties(
    granted: ApprovalGranted,
    user_id: str,
    *,
    tool: str | None = None,
    audience: str | None = None,
    validator: JWTValidator | None = None,
) -> str | None:
    """Validate the grant's access token and its two parties; audit who and for whom."""
    agent = agent_id()
    actor: str | None = None
    if _looks_like_jwt(granted.access_token):
        try:
            claims = await (validator or _validator()).validate(
                granted.access_token, audience=audience
            )
        except InvalidToken as exc:
            await _record(user_id, None, tool, f"refused: {exc}")
            raise ApprovalUnverified(f"its access token was refused: {exc}") from None
        try:
            actor = check_parties(claims, user_id=user_id, agent=agent)
        except ApprovalUnverified as exc:
            await _record(user_id, _safe_actor(claims), tool, f"refused: {exc.reason}")
            raise
    await _record(user_id, actor, tool, "allowed" if actor else "allowed (no act claim)")
    return actor


def _safe_actor(claims: dict[str, Any]) -> str | None:
    act = claims.get(ACT)
    sub = act.get("sub") if isinstance(act, dict) else None
    return sub[:100] if isinstance(sub, str) else None


async def _record(user_id: str, actor: str | None, tool: str | None, outcome: str) -> None:
    await note(
        AuditEvent.TOKEN_EXCHANGE,
        outcome,
        sub=user_id,
        act=actor,
        tool=tool,
        reason="CIBA grant (sub and act.sub as the token states them)",
    )
