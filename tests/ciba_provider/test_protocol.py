"""The provider's CIBA wire protocol, through the project's real `CIBAClient` and raw requests:
start, pending, slow_down, approve, deny, expiry, single redemption, and every refusal."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import pytest
from joserfc import jwt

from auth.ciba import CIBA_GRANT_TYPE, ApprovalRequest
from auth.errors import ApprovalDenied, ApprovalExpired, ApprovalPending, ProviderUnavailable
from devstack.identity.ciba import ApprovalClosed, UnknownApproval
from settings import get_settings

from .helpers import (
    ALICE,
    BOB,
    DETAILS,
    ISSUER,
    Clock,
    add_client,
    agent_secret,
    basic,
    ciba_client,
    fresh_provider,
    http_client,
    start_form,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def idp(tmp_path, clock):
    return fresh_provider(tmp_path, clock)


@pytest.fixture(scope="module")
def refusing_idp(tmp_path_factory):
    """One provider for the many refusals: none of them may leave a request behind."""
    return fresh_provider(tmp_path_factory.mktemp("refusals"), Clock())


def _claims(provider, token: str) -> dict:
    return dict(jwt.decode(token, provider.signing_key.verify_set, algorithms=["RS256"]).claims)


async def _start(client, **kwargs) -> ApprovalRequest:
    args = {
        "user_id": ALICE,
        "binding_message": "Create public gist notes.md #ab12cd",
        "scopes": ["create:gist"],
        "audience": get_settings().audience,
        "requested_expiry": 120,
        "authorization_details": DETAILS,
    }
    args.update(kwargs)
    return await client.start(**args)


async def test_discovery_advertises_ciba(idp):
    provider, app, _ = idp
    async with http_client(app) as http:
        doc = (await http.get("/.well-known/openid-configuration")).json()
    assert doc["backchannel_authentication_endpoint"] == ISSUER + "bc-authorize"
    assert doc["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
    assert doc["backchannel_user_code_parameter_supported"] is False
    assert CIBA_GRANT_TYPE in doc["grant_types_supported"]
    agent = provider.clients.get(get_settings().agent_client_id)
    assert agent.check_grant_type(CIBA_GRANT_TYPE)
    assert agent.metadata["backchannel_token_delivery_mode"] == "poll"  # Auth0's default


async def test_approve_gives_tokens_for_the_audience_and_scope_once(idp, clock):
    provider, app, ciba = idp
    client = ciba_client(app, clock)
    request = await _start(client)
    assert request.interval == 5 and request.expires_at == pytest.approx(clock.now + 120)
    with pytest.raises(ApprovalPending):
        await client.poll(request)
    [pending] = ciba.pending(ALICE)
    assert pending.binding_message == "Create public gist notes.md #ab12cd"
    assert pending.authorization_details == DETAILS
    assert ciba.pending(BOB) == []
    clock.advance(5)
    ciba.decide(pending.id, ALICE, approve=True)
    granted = await client.poll(request)
    claims = _claims(provider, granted.access_token)
    assert claims["sub"] == ALICE
    assert claims["client_id"] == get_settings().agent_client_id
    assert get_settings().audience in claims["aud"]
    assert claims["scope"].split() == ["openid", "create:gist"]
    assert "create:gist" in granted.scope.split()
    id_claims = _claims(provider, granted.id_token)
    assert id_claims["aud"] == get_settings().agent_client_id and id_claims["sub"] == ALICE
    # exactly once: the same auth_req_id never gives tokens again
    with pytest.raises(ApprovalDenied, match="no longer knows"):
        await client.poll(request)
    async with http_client(app) as http:
        again = await http.post(
            "/oauth/token",
            data={"grant_type": CIBA_GRANT_TYPE, "auth_req_id": request.auth_req_id},
            headers=basic(*agent_secret()),
        )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert ciba.stats(pending.id)["polls"] == 4  # pending, granted, two refused replays
    assert ciba.view(ciba.get(pending.id))["status"] == "approved"


async def test_concurrent_polls_after_approval_redeem_once(idp, clock):
    _, app, ciba = idp
    request = await _start(ciba_client(app, clock))
    ciba.decide(request.auth_req_id, ALICE, approve=True)
    clients = [ciba_client(app, clock) for _ in range(5)]
    results = await asyncio.gather(*(c.poll(request) for c in clients), return_exceptions=True)
    granted = [r for r in results if not isinstance(r, Exception)]
    assert len(granted) == 1
    assert all(isinstance(r, ApprovalDenied) for r in results if isinstance(r, Exception))


async def test_polling_too_fast_is_slow_down_with_retry_after(idp, clock):
    _, app, _ = idp
    client = ciba_client(app, clock)
    request = await _start(client)
    async with http_client(app) as http:

        async def raw_poll():
            return await http.post(
                "/oauth/token",
                data={"grant_type": CIBA_GRANT_TYPE, "auth_req_id": request.auth_req_id},
                headers=basic(*agent_secret()),
            )

        first = await raw_poll()
        assert first.status_code == 400 and first.json()["error"] == "authorization_pending"
        clock.advance(2)
        fast = await raw_poll()
        assert fast.status_code == 400 and fast.json()["error"] == "slow_down"
        assert fast.headers["Retry-After"] == "10"
        clock.advance(6)  # 6 s after the last poll, but the interval is now 10 s
        still_fast = await raw_poll()
        assert (
            still_fast.json()["error"] == "slow_down" and still_fast.headers["Retry-After"] == "15"
        )
        clock.advance(15)
        assert (await raw_poll()).json()["error"] == "authorization_pending"
    # the real client adds 5 s to its interval and honours Retry-After
    clock.advance(1)
    with pytest.raises(ApprovalPending):
        await client.poll(request)
    assert request.interval == 10 and request.not_before >= clock.now + 15


async def test_deny_is_access_denied(idp, clock):
    _, app, ciba = idp
    client = ciba_client(app, clock)
    request = await _start(client)
    [pending] = ciba.pending(ALICE)
    decided = ciba.decide(request.auth_req_id, ALICE, approve=False)  # by auth_req_id too
    assert decided.id == pending.id and decided.status == "denied"
    with pytest.raises(ApprovalDenied, match="denied"):
        await client.poll(request)
    with pytest.raises(ApprovalClosed):
        ciba.decide(pending.id, ALICE, approve=True)  # a denial is final
    assert ciba.view(ciba.get(pending.id))["status"] == "denied"


async def test_expiry_is_expired_token_and_closes_the_request(idp, clock):
    _, app, ciba = idp
    client = ciba_client(app, clock)
    request = await _start(client, requested_expiry=30)
    [pending] = ciba.pending(ALICE)
    clock.advance(31)
    with pytest.raises(ApprovalExpired):
        await client.poll(request)
    assert ciba.pending(ALICE) == []
    with pytest.raises(ApprovalClosed, match="expired"):
        ciba.decide(pending.id, ALICE, approve=True)
    assert ciba.view(ciba.get(pending.id))["status"] == "expired"


async def test_an_approval_not_collected_in_time_expires(idp, clock):
    _, app, ciba = idp
    client = ciba_client(app, clock)
    request = await _start(client, requested_expiry=30)
    ciba.decide(request.auth_req_id, ALICE, approve=True)
    clock.advance(31)
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": CIBA_GRANT_TYPE, "auth_req_id": request.auth_req_id},
            headers=basic(*agent_secret()),
        )
    assert answer.status_code == 400 and answer.json()["error"] == "expired_token"


async def test_only_the_named_user_decides(idp, clock):
    _, app, ciba = idp
    request = await _start(ciba_client(app, clock))
    with pytest.raises(UnknownApproval):
        ciba.decide(request.auth_req_id, BOB, approve=True)
    with pytest.raises(UnknownApproval):
        ciba.decide("apr_doesnotexist", ALICE, approve=True)
    assert len(ciba.pending(ALICE)) == 1


async def test_another_clients_auth_req_id_is_invalid_grant(idp, clock):
    provider, app, ciba = idp
    request = await _start(ciba_client(app, clock))
    ciba.decide(request.auth_req_id, ALICE, approve=True)
    other_id, other_secret = add_client(provider, "other-app")
    other = ciba_client(app, clock, other_id, other_secret)
    with pytest.raises(ApprovalDenied, match="no longer knows"):
        await other.poll(request)
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": CIBA_GRANT_TYPE, "auth_req_id": request.auth_req_id},
            headers=basic(other_id, other_secret),
        )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    # the rightful client still gets its tokens
    granted = await ciba_client(app, clock).poll(request)
    assert granted.access_token


async def test_unknown_auth_req_id_and_missing_one(idp, clock):
    _, app, _ = idp
    async with http_client(app) as http:
        unknown = await http.post(
            "/oauth/token",
            data={"grant_type": CIBA_GRANT_TYPE, "auth_req_id": "nope"},
            headers=basic(*agent_secret()),
        )
        missing = await http.post(
            "/oauth/token", data={"grant_type": CIBA_GRANT_TYPE}, headers=basic(*agent_secret())
        )
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


_BAD_STARTS = [
    # (form changes, status, error)
    ({"binding_message": "x" * 65}, 400, "invalid_binding_message"),
    ({"binding_message": "Create <gist>"}, 400, "invalid_binding_message"),
    ({"binding_message": "Créer un gist"}, 400, "invalid_binding_message"),
    ({"binding_message": "   "}, 400, "invalid_binding_message"),
    # control characters: Auth0's set has no line breaks or tabs (they could fake a line)
    ({"binding_message": "Create gist a\r\nApprove nothing"}, 400, "invalid_binding_message"),
    ({"binding_message": "Create gist a\nb"}, 400, "invalid_binding_message"),
    ({"binding_message": "Create\tgist"}, 400, "invalid_binding_message"),
    ({"binding_message": "Create gist\x0b"}, 400, "invalid_binding_message"),
    ({"binding_message": "Create gist\x0c"}, 400, "invalid_binding_message"),
    ({"binding_message": "Create gist\x00"}, 400, "invalid_binding_message"),
    ({"binding_message": "Create\u00a0gist"}, 400, "invalid_binding_message"),
    ({"binding_message": "Create\u2028gist"}, 400, "invalid_binding_message"),
    ({"binding_message": None}, 400, "invalid_request"),
    ({"login_hint": "auth0|alice"}, 400, "invalid_request"),
    (
        {"login_hint": json.dumps({"format": "email", "email": "alice@example.com"})},
        400,
        "invalid_request",
    ),
    (
        {"login_hint": json.dumps({"format": "iss_sub", "iss": "https://evil/", "sub": ALICE})},
        400,
        "invalid_request",
    ),
    ({"login_hint": json.dumps(["iss_sub"])}, 400, "invalid_request"),
    ({"login_hint": None}, 400, "invalid_request"),
    (
        {"login_hint": json.dumps({"format": "iss_sub", "iss": ISSUER, "sub": "auth0|ghost"})},
        400,
        "unknown_user_id",
    ),
    ({"requested_expiry": "0"}, 400, "invalid_request"),
    ({"requested_expiry": "301"}, 400, "invalid_request"),
    ({"requested_expiry": "1.5"}, 400, "invalid_request"),
    ({"requested_expiry": "-5"}, 400, "invalid_request"),
    ({"requested_expiry": "soon"}, 400, "invalid_request"),
    ({"scope": "create:gist"}, 400, "invalid_scope"),
    ({"scope": "openid delete:everything"}, 400, "invalid_scope"),
    ({"scope": None}, 400, "invalid_request"),
    ({"authorization_details": "{not json"}, 400, "invalid_authorization_details"),
    ({"authorization_details": json.dumps({"type": "x"})}, 400, "invalid_authorization_details"),
    ({"authorization_details": json.dumps([{"tool": "x"}])}, 400, "invalid_authorization_details"),
    ({"authorization_details": "[]"}, 400, "invalid_authorization_details"),
    (
        {"authorization_details": '[{"type": "x", "content": "\\ud800"}]'},
        400,
        "invalid_authorization_details",
    ),
    ({"audience": "https://unknown.example"}, 403, "access_denied"),
    ({"id_token_hint": "eyJ..."}, 400, "invalid_request"),
    ({"client_secret": "wrong"}, 401, "invalid_client"),
    ({"client_secret": None}, 401, "invalid_client"),
]


@pytest.mark.parametrize(("changes", "status", "error"), _BAD_STARTS)
async def test_bad_requests_get_the_right_oauth_error(refusing_idp, changes, status, error):
    _, app, ciba = refusing_idp
    async with http_client(app) as http:
        answer = await http.post("/bc-authorize", data=start_form(**changes))
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error and body.get("error_description")
    assert ciba.requests(ALICE) == []


async def test_refusals_for_clients_and_repeated_parameters(idp):
    provider, app, _ = idp
    no_ciba_id, no_ciba_secret = add_client(provider, "no-ciba", ciba=False)
    s = get_settings()
    async with http_client(app) as http:
        unauthorized = await http.post(
            "/bc-authorize",
            data=start_form(client_id=no_ciba_id, client_secret=no_ciba_secret),
        )
        public = await http.post(
            "/bc-authorize", data=start_form(client_id=s.cli_client_id, client_secret=None)
        )
        form = [*list(start_form().items()), ("scope", "openid")]
        repeated = await http.post(
            "/bc-authorize",
            content=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        basic_auth = await http.post(
            "/bc-authorize",
            data=start_form(client_id=None, client_secret=None),
            headers=basic(*agent_secret()),
        )
        cli_poll = await http.post(
            "/oauth/token",
            data={"grant_type": CIBA_GRANT_TYPE, "auth_req_id": "x", "client_id": s.cli_client_id},
        )
    assert unauthorized.status_code == 400 and unauthorized.json()["error"] == "unauthorized_client"
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"
    assert basic_auth.status_code == 200 and basic_auth.json()["auth_req_id"]
    assert cli_poll.status_code in (400, 401) and cli_poll.json()["error"] in (
        "invalid_client",
        "unauthorized_client",
    )


async def test_json_bodies_and_garbage_never_500(idp):
    _, app, _ = idp
    agent_id, agent_key = agent_secret()
    bodies = [
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
        (b"{", "application/json"),
        (b"[1,2]", "application/json"),
        (b"<xml/>", "application/xml"),
        (b"a=" + b"x" * 70_000, "application/x-www-form-urlencoded"),
    ]
    async with http_client(app) as http:
        for content, kind in bodies:
            answer = await http.post(
                "/bc-authorize",
                content=content,
                headers={**basic(agent_id, agent_key), "Content-Type": kind},
            )
            assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
        as_json = await http.post(
            "/bc-authorize",
            json={k: v for k, v in start_form().items() if k not in ("client_id", "client_secret")}
            | {"requested_expiry": 60},
            headers=basic(agent_id, agent_key),
        )
    assert as_json.status_code == 200 and as_json.json()["expires_in"] == 60


async def test_the_client_maps_refusals(idp, clock):
    _, app, _ = idp
    client = ciba_client(app, clock)
    with pytest.raises(ProviderUnavailable, match="binding_message"):
        await _start(client, binding_message="<script>")
    with pytest.raises(ApprovalDenied, match="does not know this user"):
        await _start(client, user_id="auth0|ghost")
    with pytest.raises(ProviderUnavailable, match="requested_expiry"):
        await _start(client, requested_expiry=3600)
    wrong = ciba_client(app, clock, secret="not-the-secret")
    with pytest.raises(ProviderUnavailable, match="invalid_client"):
        await _start(wrong)


async def test_default_expiry_and_interval_and_poll_clients_ignore_notification_tokens(idp, clock):
    _, app, ciba = idp
    client = ciba_client(app, clock)
    request = await client.start(ALICE, "Approve this", ["create:gist"], notification_token="nt")
    assert request.expires_at == pytest.approx(clock.now + 300)
    [record] = ciba.pending(ALICE)
    assert record.delivery_mode == "poll" and record.notification_token is None
    assert record.audience == get_settings().audience  # the default API when none is asked


async def test_no_token_or_auth_req_id_in_logs_or_reprs(idp, clock, caplog):
    caplog.set_level("DEBUG")
    _, app, ciba = idp
    client = ciba_client(app, clock)
    request = await _start(client)
    ciba.decide(request.auth_req_id, ALICE, approve=True)
    granted = await client.poll(request)
    text = caplog.text + repr(ciba.get(request.auth_req_id))
    assert request.auth_req_id not in text
    assert granted.access_token not in text and granted.id_token not in text


@pytest.mark.parametrize(
    "message",
    ["a", "A" * 64, "Create public gist notes.md #ab12cd", "x+y-z_w.v,u:t#s 0123456789"],
)
async def test_binding_messages_in_auth0s_set_are_accepted(idp, message):
    _, app, ciba = idp
    async with http_client(app) as http:
        answer = await http.post("/bc-authorize", data=start_form(binding_message=message))
    assert answer.status_code == 200, answer.text
    [record] = ciba.requests(ALICE)
    assert record.binding_message == message
