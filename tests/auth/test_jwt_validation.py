"""JWT validation: every way a bearer token can be wrong is refused with a safe message."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import RSAKey

from auth.errors import InvalidToken, ProviderUnavailable
from auth.jwt import JWTValidator, TokenRejected, scopes, unverified_header
from tests.auth.jwt_kit import AUDIENCE, ISSUER, FakeIssuer, tamper


@pytest.fixture(scope="module")
def issuer() -> FakeIssuer:
    return FakeIssuer()


def _validator(issuer: FakeIssuer, **options) -> JWTValidator:
    options.setdefault("leeway", 30)
    return JWTValidator(ISSUER, AUDIENCE, transport=issuer.transport(), **options)


async def _reason(validator: JWTValidator, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    err = caught.value
    assert isinstance(err, TokenRejected)
    # The message is for people: it never quotes the token or any part of it.
    for part in token.split("."):
        if len(part) > 8:
            assert part not in str(err)
    return err.reason


async def test_a_good_rs256_token_gives_its_claims(issuer: FakeIssuer) -> None:
    claims = await _validator(issuer).validate(issuer.mint(scope="openid create:gist"))
    assert claims["sub"] == "auth0|alice"
    assert scopes(claims) == ["openid", "create:gist"]


@pytest.mark.parametrize("alg", ["ES256", "PS256"])
async def test_other_allowed_algorithms_are_accepted(issuer: FakeIssuer, alg: str) -> None:
    claims = await _validator(issuer).validate(issuer.mint(alg=alg))
    assert claims["iss"] == ISSUER


async def test_a_single_string_audience_is_accepted(issuer: FakeIssuer) -> None:
    claims = await _validator(issuer).validate(issuer.mint(aud=AUDIENCE, typ="JWT"))
    assert claims["aud"] == AUDIENCE


async def test_expired(issuer: FakeIssuer) -> None:
    now = int(time.time())
    token = issuer.mint(iat=now - 3600, exp=now - 31)
    assert await _reason(_validator(issuer), token) == "expired"


async def test_expired_within_leeway_is_still_accepted(issuer: FakeIssuer) -> None:
    now = int(time.time())
    claims = await _validator(issuer).validate(issuer.mint(iat=now - 600, exp=now - 10))
    assert claims["exp"] == now - 10


async def test_not_yet_valid(issuer: FakeIssuer) -> None:
    now = int(time.time())
    assert await _reason(_validator(issuer), issuer.mint(nbf=now + 120)) == "not_yet_valid"


async def test_issued_in_the_future(issuer: FakeIssuer) -> None:
    now = int(time.time())
    assert await _reason(_validator(issuer), issuer.mint(iat=now + 600)) == "not_yet_valid"


async def test_wrong_issuer(issuer: FakeIssuer) -> None:
    token = issuer.mint(iss="https://evil.example.com/")
    assert await _reason(_validator(issuer), token) == "issuer"


async def test_wrong_audience(issuer: FakeIssuer) -> None:
    token = issuer.mint(aud=["https://other-api.example.com", ISSUER + "userinfo"])
    assert await _reason(_validator(issuer), token) == "audience"


async def test_missing_audience(issuer: FakeIssuer) -> None:
    assert await _reason(_validator(issuer), issuer.mint(aud=None)) == "audience"


@pytest.mark.parametrize("claim", ["exp", "sub", "iss"])
async def test_missing_required_claim(issuer: FakeIssuer, claim: str) -> None:
    assert await _reason(_validator(issuer), issuer.mint(**{claim: None})) == "claims"


async def test_alg_none(issuer: FakeIssuer) -> None:
    assert await _reason(_validator(issuer), issuer.unsigned()) == "algorithm"


async def test_hs256_signed_with_the_public_key(issuer: FakeIssuer) -> None:
    token = issuer.hs256_with_public_key()
    assert await _reason(_validator(issuer), token) == "algorithm"


async def test_rs256_header_with_an_ec_key_id(issuer: FakeIssuer) -> None:
    # The header claims RS256 but names the EC key: algorithm and key family must agree.
    token = issuer.mint(key=issuer.rsa, kid="ec-1")
    assert await _reason(_validator(issuer), token) == "algorithm"


async def test_tampered_signature(issuer: FakeIssuer) -> None:
    assert await _reason(_validator(issuer), tamper(issuer.mint())) == "signature"


async def test_signed_by_another_key_with_a_known_kid(issuer: FakeIssuer) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
    assert await _reason(_validator(issuer), issuer.mint(key=impostor)) == "signature"


async def test_unknown_kid(issuer: FakeIssuer) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "never-published"}, private=True)
    assert await _reason(_validator(issuer), issuer.mint(key=stranger)) == "unknown_kid"


async def test_missing_kid(issuer: FakeIssuer) -> None:
    token = issuer.mint()
    from tests.auth.jwt_kit import b64json

    _, payload, signature = token.split(".")
    headerless = f"{b64json({'alg': 'RS256', 'typ': 'at+jwt'})}.{payload}.{signature}"
    assert await _reason(_validator(issuer), headerless) == "unknown_kid"


@pytest.mark.parametrize("typ", ["JWE", "secevent+jwt", "dpop+jwt"])
async def test_wrong_typ(issuer: FakeIssuer, typ: str) -> None:
    assert await _reason(_validator(issuer), issuer.mint(typ=typ)) == "typ"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.???.###",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0",  # two segments only
        "W10.e30.c2ln",  # header is a JSON list
        "x" * 20_000,
        "a.b.c.d.e",  # JWE shape
    ],
)
async def test_garbage(issuer: FakeIssuer, garbage: str) -> None:
    assert await _reason(_validator(issuer), garbage) == "malformed"


async def test_crit_header_is_refused(issuer: FakeIssuer) -> None:
    from tests.auth.jwt_kit import b64json

    _, payload, signature = issuer.mint().split(".")
    header = b64json({"alg": "RS256", "kid": "rsa-1", "crit": ["x-custom"], "x-custom": 1})
    token = f"{header}.{payload}.{signature}"
    assert await _reason(_validator(issuer), token) == "malformed"


async def test_non_string_token_is_malformed() -> None:
    with pytest.raises(TokenRejected):
        unverified_header(None)  # type: ignore[arg-type]


def test_hmac_cannot_be_allowed() -> None:
    with pytest.raises(ValueError):
        JWTValidator(ISSUER, AUDIENCE, algorithms=["RS256", "HS256"])
    with pytest.raises(ValueError):
        JWTValidator(ISSUER, AUDIENCE, algorithms=["none"])


async def test_a_restricted_allow_list_refuses_the_rest(issuer: FakeIssuer) -> None:
    validator = _validator(issuer, algorithms=["RS256"])
    assert await _reason(validator, issuer.mint(alg="ES256")) == "algorithm"


async def test_id_token_is_checked_against_the_client_audience(issuer: FakeIssuer) -> None:
    token = issuer.mint(typ="JWT", aud="warrant-cli", email="alice@example.com")
    validator = _validator(issuer)
    claims = await validator.validate(token, audience="warrant-cli")
    assert claims["email"] == "alice@example.com"
    with pytest.raises(InvalidToken):
        await validator.validate(token)  # not for the API


async def test_jwks_outage_fails_closed() -> None:
    down = FakeIssuer()
    down.fail_jwks = True
    with pytest.raises(ProviderUnavailable) as caught:
        await _validator(down).validate(down.mint())
    assert "JWKS" in str(caught.value)


async def test_discovery_naming_another_issuer_fails_closed() -> None:
    liar = FakeIssuer()
    liar.discovery_issuer = "https://evil.example.com/"
    with pytest.raises(ProviderUnavailable):
        await _validator(liar).validate(liar.mint())
