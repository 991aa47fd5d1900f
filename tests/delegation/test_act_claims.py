"""RFC 8693 `act`: the grant's token must name this user and (if any) this agent; forgeries fail."""

from __future__ import annotations

import base64
import json

import pytest

from auth.act_claims import check_parties, verify_grant_parties
from auth.audit import AuditEvent, AuditLog, audit_location
from auth.ciba import ApprovalGranted, ApprovalUnverified
from auth.jwt import JWTValidator
from tests.auth.jwt_kit import AUDIENCE, ISSUER, FakeIssuer, b64json

AGENT = "warrant-agent"


def _rename_actor(token: str, actor: str) -> str:
    """Rewrite `act.sub` and keep the old signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["act"] = {"sub": actor}
    return f"{header}.{b64json(claims)}.{signature}"


def test_check_parties() -> None:
    assert check_parties({"sub": "u", "act": {"sub": AGENT}}, user_id="u", agent=AGENT) == AGENT
    assert check_parties({"sub": "u"}, user_id="u", agent=AGENT) is None
    nested = {"sub": "u", "act": {"sub": AGENT, "act": {"sub": "earlier-agent"}}}
    assert check_parties(nested, user_id="u", agent=AGENT) == AGENT
    for claims, why in [
        ({"sub": "other", "act": {"sub": AGENT}}, "another user"),
        ({"sub": "u", "act": {"sub": "mallory-agent"}}, "another agent"),
        ({"sub": "u", "act": "warrant-agent"}, "malformed"),
        ({"sub": "u", "act": {"sub": ""}}, "malformed"),
        ({"sub": "u", "act": {"iss": "x"}}, "malformed"),
    ]:
        with pytest.raises(ApprovalUnverified, match=why):
            check_parties(claims, user_id="u", agent=AGENT)


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


def _validator(issuer: FakeIssuer) -> JWTValidator:
    return JWTValidator(ISSUER, AUDIENCE, transport=issuer.transport())


def _granted(token: str) -> ApprovalGranted:
    return ApprovalGranted(access_token=token, expires_at=0)


async def _records():
    log = AuditLog(audit_location())
    try:
        return await log.records(event=AuditEvent.TOKEN_EXCHANGE)
    finally:
        await log.close()


async def test_grant_naming_this_agent_is_recorded(issuer) -> None:
    token = issuer.mint(act={"sub": AGENT})
    actor = await verify_grant_parties(
        _granted(token), "auth0|alice", tool="create_public_gist", validator=_validator(issuer)
    )
    assert actor == AGENT
    (row,) = await _records()
    assert (row.sub, row.act, row.outcome) == ("auth0|alice", AGENT, "allowed")


async def test_a_forged_act_is_refused(issuer) -> None:
    # signed by the issuer but naming another agent: refused
    other = issuer.mint(act={"sub": "mallory-agent"})
    with pytest.raises(ApprovalUnverified, match="another agent"):
        await verify_grant_parties(_granted(other), "auth0|alice", validator=_validator(issuer))
    # our agent's name written into a token after signing: the signature fails
    edited = _rename_actor(issuer.mint(act={"sub": "mallory-agent"}), AGENT)
    with pytest.raises(ApprovalUnverified, match="refused"):
        await verify_grant_parties(_granted(edited), "auth0|alice", validator=_validator(issuer))
    # unsigned, claiming to be us
    unsigned = issuer.unsigned(act={"sub": AGENT})
    with pytest.raises(ApprovalUnverified):
        await verify_grant_parties(_granted(unsigned), "auth0|alice", validator=_validator(issuer))
    # a token for bob presented for alice's approval
    bobs = issuer.mint(sub="auth0|bob", act={"sub": AGENT})
    with pytest.raises(ApprovalUnverified, match="another user"):
        await verify_grant_parties(_granted(bobs), "auth0|alice", validator=_validator(issuer))
    outcomes = [r.outcome for r in await _records()]
    assert len(outcomes) == 4 and all(o.startswith("refused") for o in outcomes)


async def test_opaque_token_is_recorded_without_an_actor(issuer) -> None:
    assert await verify_grant_parties(_granted("opaque-token-value"), "auth0|alice") is None
    (row,) = await _records()
    assert row.act is None and row.outcome == "allowed (no act claim)"
