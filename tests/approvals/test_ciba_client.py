"""The CIBA client's protocol handling, against a scripted provider on httpx's mock transport.

The end-to-end tests against the devstack provider live beside this file; these pin down every
answer of CIBA Core and Auth0 one by one: pending, slow_down, denial versus expiry, nonsense.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from auth.ciba import (
    BINDING_MESSAGE_MAX,
    CIBA_GRANT_TYPE,
    ApprovalRequest,
    ApprovalUnverified,
    CIBAClient,
    authorization_details,
    binding_message,
    request_code,
)
from auth.errors import ApprovalDenied, ApprovalExpired, ApprovalPending, ProviderUnavailable
from auth.jwt import ID_TOKEN_TYPES, JWTValidator
from tests.auth.jwt_kit import FakeIssuer, tamper

ISSUER = "https://tenant.example.com/"
ISSUER_KEYS = FakeIssuer(ISSUER)  # the tenant's signing keys: its JWKS and the ID tokens


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


Handler = Callable[[httpx.Request], httpx.Response]


def _discovery(bc_path: str = "/bc-authorize", token_path: str = "/oauth/token") -> dict:
    return {
        "issuer": ISSUER,
        "token_endpoint": f"https://tenant.example.com{token_path}",
        "backchannel_authentication_endpoint": f"https://tenant.example.com{bc_path}",
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "jwks_uri": "https://tenant.example.com/.well-known/jwks.json",
    }


def _client(
    handler: Handler, clock: Clock | None = None, discovery: dict | None = None
) -> tuple[CIBAClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    doc = discovery or _discovery()

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            keys = [k.as_dict(private=False) for k in ISSUER_KEYS.published]
            return httpx.Response(200, json={"keys": keys})
        seen.append(request)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=doc)
        return handler(request)

    transport = httpx.MockTransport(route)
    clock = clock or Clock()
    id_tokens = JWTValidator(
        ISSUER, "agent", token_types=ID_TOKEN_TYPES, clock=clock, transport=transport
    )
    http = httpx.AsyncClient(transport=transport)
    client = CIBAClient(ISSUER, "agent", "secret", http=http, clock=clock, id_tokens=id_tokens)
    return client, seen


def id_token(now: float, access_token: str | None = None, **changes: object) -> str:
    """An ID token from the tenant for `auth0|a` (the user `_request` asks), to `agent`."""
    claims: dict[str, object] = {
        "sub": "auth0|a",
        "aud": "agent",
        "iat": int(now),
        "exp": int(now) + 600,
        "scope": None,
    }
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()[:16]
        claims["at_hash"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    claims.update(changes)
    return ISSUER_KEYS.mint(typ="JWT", **claims)


def grant(now: float, access_token: str = "AT-SECRET", **changes: object) -> dict[str, object]:
    """A token endpoint's 200 answer for an approval, with an ID token (override its claims)."""
    return {
        "access_token": access_token,
        "id_token": id_token(now, access_token, **changes),
        "expires_in": 60,
        "token_type": "Bearer",
        "scope": "openid create:gist",
    }


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _ok_start(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"auth_req_id": "req-1", "expires_in": 300, "interval": 2})


async def test_start_sends_the_auth0_wire_format() -> None:
    client, seen = _client(_ok_start)
    details = authorization_details("create_public_gist", "ab" * 32)
    request = await client.start(
        "auth0|alice",
        "Create gist #abcdef",
        ["create:gist"],
        audience="https://api.example",
        requested_expiry=120,
        authorization_details=details,
    )
    form = _form(seen[-1])
    assert seen[-1].url.path == "/bc-authorize"
    assert json.loads(form["login_hint"]) == {
        "format": "iss_sub",
        "iss": ISSUER,
        "sub": "auth0|alice",
    }
    assert form["scope"].split() == ["openid", "create:gist"]
    assert form["audience"] == "https://api.example"
    assert form["requested_expiry"] == "120"
    assert json.loads(form["authorization_details"]) == details
    assert form["client_id"] == "agent" and form["client_secret"] == "secret"
    assert "client_notification_token" not in form
    assert request.auth_req_id == "req-1" and request.interval == 2
    assert request.expires_at == pytest.approx(1_000_300.0)


async def test_interval_defaults_to_five_seconds() -> None:
    client, _ = _client(lambda r: httpx.Response(200, json={"auth_req_id": "r", "expires_in": 60}))
    request = await client.start("auth0|a", "Approve", [])
    assert request.interval == 5.0


async def test_discovery_with_other_paths_is_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ciba/authorize":
            return _ok_start(request)
        if request.url.path == "/connect/token":
            return httpx.Response(200, json=grant(1_000_000.0, "at"))
        return httpx.Response(404, json={"error": "not_found"})

    client, seen = _client(handler, discovery=_discovery("/ciba/authorize", "/connect/token"))
    request = await client.start("auth0|a", "Approve", [])
    granted = await client.poll(request)
    assert granted.access_token == "at"
    assert [r.url.path for r in seen[1:]][:2] == ["/ciba/authorize", "/connect/token"]
    [token_request] = [r for r in seen if r.url.path == "/connect/token"]
    assert _form(token_request)["grant_type"] == CIBA_GRANT_TYPE


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"expires_in": 60}),
        (200, {"auth_req_id": "", "expires_in": 60}),
        (200, {"auth_req_id": "r", "expires_in": "soon"}),
        (200, {"auth_req_id": "r", "expires_in": -1}),
        (200, ["not", "an", "object"]),
        (400, {"error": "invalid_request", "error_description": "binding_message is invalid"}),
        (503, {"error": "temporarily_unavailable"}),
    ],
)
async def test_bad_start_answers_are_provider_errors(status: int, body: object) -> None:
    client, _ = _client(lambda r: httpx.Response(status, json=body))
    with pytest.raises(ProviderUnavailable) as err:
        await client.start("auth0|a", "Approve", [])
    assert "identity provider" in str(err.value)


async def test_start_refused_for_unknown_user_is_a_denial() -> None:
    client, _ = _client(lambda r: httpx.Response(400, json={"error": "unknown_user_id"}))
    with pytest.raises(ApprovalDenied, match="does not know this user"):
        await client.start("auth0|ghost", "Approve", [])


async def test_not_json_and_unreachable_and_timeout() -> None:
    client, _ = _client(lambda r: httpx.Response(200, text="<html>"))
    with pytest.raises(ProviderUnavailable, match="not JSON"):
        await client.start("auth0|a", "Approve", [])

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = _client(refuse)
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        await client.start("auth0|a", "Approve", [])

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = _client(slow)
    with pytest.raises(ProviderUnavailable, match="in time"):
        await client.start("auth0|a", "Approve", [])


def _request(clock: Clock, expires_in: float = 300, interval: float = 5) -> ApprovalRequest:
    return ApprovalRequest("req-1", "auth0|a", "Approve", clock.now + expires_in, interval)


def _token_error(error: str, status: int = 400, headers: dict | None = None) -> Handler:
    return lambda r: httpx.Response(status, json={"error": error}, headers=headers)


async def test_pending_keeps_the_interval() -> None:
    clock = Clock()
    client, _ = _client(_token_error("authorization_pending"), clock)
    request = _request(clock)
    with pytest.raises(ApprovalPending):
        await client.poll(request)
    assert request.interval == 5 and request.not_before == clock.now + 5


async def test_slow_down_adds_five_seconds_for_every_later_poll_and_honours_retry_after() -> None:
    clock = Clock()
    client, _ = _client(_token_error("slow_down", headers={"Retry-After": "30"}), clock)
    request = _request(clock)
    with pytest.raises(ApprovalPending) as err:
        await client.poll(request)
    assert request.interval == 10 and err.value.interval == 10
    assert request.not_before == clock.now + 30
    with pytest.raises(ApprovalPending):
        await client.poll(request)
    assert request.interval == 15


async def test_access_denied_is_denial_before_expiry_and_expiry_after() -> None:
    clock = Clock()
    client, _ = _client(_token_error("access_denied"), clock)
    request = _request(clock, expires_in=60)
    with pytest.raises(ApprovalDenied):
        await client.poll(request)
    clock.now += 61
    with pytest.raises(ApprovalExpired):
        await client.poll(request)


async def test_expired_token_and_invalid_grant() -> None:
    clock = Clock()
    client, _ = _client(_token_error("expired_token"), clock)
    with pytest.raises(ApprovalExpired):
        await client.poll(_request(clock))
    client, _ = _client(_token_error("invalid_grant"), clock)
    with pytest.raises(ApprovalDenied, match="no longer knows"):
        await client.poll(_request(clock))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": "server_error"}),
        (400, {"error": "unsupported_grant_type"}),
        (400, {"message": "who knows"}),
        (200, {"token_type": "Bearer"}),
    ],
)
async def test_poll_nonsense_is_provider_unavailable(status: int, body: dict) -> None:
    clock = Clock()
    client, _ = _client(lambda r: httpx.Response(status, json=body), clock)
    with pytest.raises(ProviderUnavailable):
        await client.poll(_request(clock))


async def test_granted_tokens_do_not_print() -> None:
    clock = Clock()
    answer = {**grant(clock.now), "refresh_token": "RT-SECRET"}
    client, _ = _client(lambda r: httpx.Response(200, json=answer), clock)
    granted = await client.poll(_request(clock))
    assert granted.access_token == "AT-SECRET"
    assert granted.expires_at == clock.now + 60
    assert "SECRET" not in repr(granted) and answer["id_token"] not in repr(granted)


def _forged_answers(now: float) -> dict[str, dict[str, object]]:
    """Token endpoint 200s that must not count as the approval of `auth0|a` by `_request`."""
    bob = grant(now, "AT-BOB", sub="auth0|bob")  # bob's genuine tokens, for another request
    no_id = {k: v for k, v in grant(now).items() if k != "id_token"}
    other_key = FakeIssuer(ISSUER)
    return {
        "another user's genuine grant": bob,
        "no id_token": no_id,
        "id_token not a string": {**grant(now), "id_token": {"sub": "auth0|a"}},
        "bad signature": {**grant(now), "id_token": tamper(id_token(now, "AT-SECRET"))},
        "unknown key, known kid": {
            **grant(now),
            "id_token": other_key.mint(
                typ="JWT", kid="rsa-1", sub="auth0|a", aud="agent", iat=int(now), exp=int(now) + 60
            ),
        },
        "wrong aud": grant(now, aud="another-client"),
        "access token as id token": {
            **grant(now),
            "id_token": ISSUER_KEYS.mint(
                sub="auth0|a", aud="https://api.example", iat=int(now), exp=int(now) + 60
            ),
        },
        "wrong azp": grant(now, aud=["agent", "other"], azp="other"),
        "wrong iss": grant(now, iss="https://evil.example.com/"),
        "stale iat": grant(now, iat=int(now) - 3600),
        "iat before the request": grant(now, iat=int(now) - 200),
        "iat in the future": grant(now, iat=int(now) + 3600),
        "expired": grant(now, iat=int(now) - 120, exp=int(now) - 60),
        "at_hash of another access token": {**grant(now), "access_token": "AT-SWAPPED"},
        "auth_req_id claim of another request": grant(
            now, **{"urn:openid:params:jwt:claim:auth_req_id": "req-other"}
        ),
        "unsigned": {**grant(now), "id_token": ISSUER_KEYS.unsigned(sub="auth0|a", aud="agent")},
        "hmac with the public key": {
            **grant(now),
            "id_token": ISSUER_KEYS.hs256_with_public_key(sub="auth0|a", aud="agent"),
        },
    }


@pytest.mark.parametrize("case", sorted(_forged_answers(1_000_000.0)))
async def test_a_grant_counts_only_with_a_valid_id_token_for_the_requested_user(case: str) -> None:
    clock = Clock()
    answer = _forged_answers(clock.now)[case]
    client, _ = _client(lambda r: httpx.Response(200, json=answer), clock)
    request = _request(clock)
    request.started_at = clock.now - 100  # "iat before the request" is 200 s old
    with pytest.raises(ApprovalUnverified) as err:
        await client.poll(request)
    text = str(err.value)
    assert "could not be verified" in text and "nothing was done" in text
    for token in (answer.get("access_token"), answer.get("id_token")):
        if isinstance(token, str):
            assert token not in text and token.split(".")[0] not in text


async def test_a_valid_grant_for_the_requested_user_is_accepted() -> None:
    clock = Clock()
    answer = grant(clock.now, azp="agent", aud=["agent", ISSUER + "userinfo"])
    client, _ = _client(lambda r: httpx.Response(200, json=answer), clock)
    request = _request(clock)
    request.started_at = clock.now - 5
    granted = await client.poll(request)
    assert granted.access_token == "AT-SECRET"


async def test_unreachable_signing_keys_fail_closed() -> None:
    clock = Clock()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=grant(clock.now))

    client, _ = _client(handler, clock, discovery={**_discovery(), "jwks_uri": ISSUER + "gone"})
    with pytest.raises(ProviderUnavailable):
        await client.poll(_request(clock))


async def test_ping_mode_sends_the_notification_token() -> None:
    client, seen = _client(_ok_start)
    await client.start("auth0|a", "Approve", [], notification_token="nt-123")
    assert _form(seen[-1])["client_notification_token"] == "nt-123"


@pytest.mark.parametrize(
    "text",
    [
        "Create public gist: notes.md",
        "  émoji 🚀 & <script> ok  ",
        "x" * 200,
        "",
        "+-_.,:#",
        "a" * 30 + " " + "b" * 60,
        "line\r\nbreak\ttab\x00nul\u2028sep",
        "\u043e" * 40,
    ],
)
def test_binding_messages_are_valid_and_deterministic(text: str) -> None:
    message = binding_message(text, "0123456789abcdef", "K7Q2X")
    assert message == binding_message(text, "0123456789abcdef", "K7Q2X")
    assert 0 < len(message) <= BINDING_MESSAGE_MAX
    assert all(c.isascii() and (c.isalnum() or c in " +-_.,:#") for c in message)
    assert not set(message) & {"\r", "\n", "\t"}
    assert message == message.strip()
    assert message.endswith("#012345 K7Q2X")


def test_binding_message_keeps_what_it_can() -> None:
    assert binding_message("Create public gist: notes.md") == "Create public gist: notes.md"
    assert binding_message("") == "Approve action"


def test_characters_outside_the_set_are_shown_as_escapes_never_dropped() -> None:
    # A Cyrillic o (U+043E) in a file name used to vanish: "n\u043etes.md" was shown as
    # the look-alike "notes.md".
    assert binding_message("Create public gist n\u043etes.md") == "Create public gist nU+043Etes.md"
    assert binding_message("café") == "cafU+00E9"
    assert binding_message("a+b") == "aU+002Bb"  # every "+" in a message starts an escape
    assert binding_message("a\nb\tc\rd") == "aU+000AbU+0009cU+000Dd"
    assert binding_message("🚀") == "U+1F680"


def test_a_shortened_message_says_so_and_never_cuts_an_escape() -> None:
    message = binding_message("Create public gist " + "\u043e" * 20, "0123456789abcdef", "K7Q2X")
    body = message.removesuffix(" #012345 K7Q2X")
    assert body.endswith("...") and len(message) <= BINDING_MESSAGE_MAX
    assert body.removesuffix("...").endswith("U+043E")
    assert binding_message("x" * 100).endswith("...")


def test_request_codes_differ_between_requests() -> None:
    codes = {request_code() for _ in range(200)}
    assert len(codes) > 190
    assert all(len(c) == 5 and set(c) <= set("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for c in codes)
