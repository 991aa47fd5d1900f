"""Bearer JWT validation: the one place that decides whether a token from the provider is good.

Checks, in order: shape, algorithm allow-list (asymmetric only: never `none`, never HMAC, so a
public key can never serve as a shared secret), `typ`, the signing key by `kid` from the
provider's JWKS (refetched on an unknown `kid`, at most once per `jwks_min_refresh_seconds`),
the signature, then issuer, audience, `exp`/`nbf`/`iat` with a small leeway and `sub`.
Every failure is an `InvalidToken` whose message is safe to show: it never quotes the token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from joserfc import jwt as jose_jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, RSAKey

from auth.errors import InvalidToken, ProviderUnavailable
from auth.oidc import DiscoveryCache, ProviderMetadata, fetch_json, normalize_issuer
from settings import get_settings

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256", "PS256")
# RFC 9068 access tokens say `at+jwt`; Auth0 without that profile and most providers say `JWT`.
ACCESS_TOKEN_TYPES: frozenset[str] = frozenset({"at+jwt", "application/at+jwt", "jwt"})
ID_TOKEN_TYPES: frozenset[str] = frozenset({"jwt"})
MAX_TOKEN_BYTES = 16_384
_KEY_TYPE_FOR_ALG = {"RS256": RSAKey, "PS256": RSAKey, "ES256": ECKey}


class TokenRejected(InvalidToken):
    """An `InvalidToken` with a machine-readable `reason` (for tests, logs and metrics)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _b64_json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise TokenRejected("malformed", "The token is malformed.") from None
    if not isinstance(data, dict):
        raise TokenRejected("malformed", "The token is malformed.")
    return data


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, without any verification (only to pick a key)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("malformed", "The token is malformed.")
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenRejected("malformed", "Encrypted tokens are not accepted.")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenRejected("malformed", "The token is malformed.")
    return _b64_json(parts[0])


class JWKSCache:
    """The provider's public signing keys by `kid`, with a rate-limited refresh."""

    def __init__(
        self,
        jwks_uri: Callable[[], Any],
        *,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
    ) -> None:
        self._jwks_uri = jwks_uri  # an async callable: discovery may be needed first
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._transport = transport
        self._timeout = timeout
        self._keys: dict[str, RSAKey | ECKey] = {}
        self._fetched_at: float | None = None  # the last attempt, successful or not
        self._loaded = False  # at least one fetch succeeded
        self._locks: dict[int, asyncio.Lock] = {}
        self.fetches = 0

    def _lock(self) -> asyncio.Lock:
        key = id(asyncio.get_running_loop())
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _may_refresh(self) -> bool:
        if self._fetched_at is None:
            return True
        # Before any fetch succeeded, retry after the short failure window rather than the
        # normal refresh window: a provider that was down at startup must not lock every user
        # out for a whole window.
        window = (
            self._min_refresh
            if self._loaded
            else min(self._min_refresh, get_settings().provider_failure_cache_seconds)
        )
        return self._clock() - self._fetched_at >= window

    async def _refresh(self) -> None:
        self.fetches += 1
        # Count the attempt even when it fails: an unreachable provider is not hammered either.
        self._fetched_at = self._clock()
        document = await fetch_json(
            await self._jwks_uri(),
            what="JWKS",
            http_timeout=self._timeout,
            transport=self._transport,
        )
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ProviderUnavailable("the identity provider", "its JWKS has no key list")
        self._keys = dict(_signing_keys(keys))
        self._loaded = True

    async def key(self, kid: str) -> RSAKey | ECKey:
        """The key named `kid`; refetches the JWKS when unknown and allowed to."""
        found = self._keys.get(kid)
        if found is not None:
            return found
        async with self._lock():
            found = self._keys.get(kid)
            if found is None and self._may_refresh():
                await self._refresh()
                found = self._keys.get(kid)
        if found is None and not self._loaded:
            # No keys at all yet: the provider is the problem, not the token.
            raise ProviderUnavailable("the identity provider", "its signing keys are unavailable")
        if found is None:
            raise TokenRejected("unknown_kid", "The token was signed with an unknown key.")
        return found


def _signing_keys(keys: Iterable[Any]) -> Iterable[tuple[str, RSAKey | ECKey]]:
    """Public RSA and EC signature keys with a `kid`; anything else in the JWKS is skipped."""
    for data in keys:
        if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
            continue
        if data.get("use", "sig") != "sig" or data.get("kty") not in ("RSA", "EC"):
            continue
        # Only public parameters: a JWKS that leaks private ones is still read as public.
        public = {k: v for k, v in data.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            key_cls = RSAKey if data["kty"] == "RSA" else ECKey
            yield data["kid"], key_cls.import_key(public)
        except (JoseError, ValueError, TypeError):
            log.warning("JWKS: skipped an unreadable key (kid %s)", data["kid"][:40])


class JWTValidator:
    """Validates JWTs from one issuer for one audience; keys and discovery are cached."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        leeway: int = 30,
        jwks_min_refresh_seconds: float = 60.0,
        algorithms: Iterable[str] = ALLOWED_ALGORITHMS,
        token_types: frozenset[str] = ACCESS_TOKEN_TYPES,
        discovery: DiscoveryCache | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
    ) -> None:
        unsafe = {a for a in algorithms if a not in ALLOWED_ALGORITHMS}
        if unsafe:
            raise ValueError(f"algorithms outside the allow-list: {sorted(unsafe)}")
        self.issuer = normalize_issuer(issuer)
        self.audience = audience
        self.leeway = leeway
        self.algorithms = tuple(algorithms)
        self.token_types = token_types
        self._clock = clock
        self._discovery = discovery or DiscoveryCache(transport=transport, timeout=timeout)
        self.jwks = JWKSCache(
            self._jwks_uri,
            min_refresh_seconds=jwks_min_refresh_seconds,
            clock=monotonic,
            transport=transport,
            timeout=timeout,
        )

    @classmethod
    def from_settings(cls, **overrides: Any) -> JWTValidator:
        """A validator for the configured issuer and API audience."""
        settings = get_settings()
        options: dict[str, Any] = {
            "leeway": settings.jwt_leeway_seconds,
            "jwks_min_refresh_seconds": settings.jwks_min_refresh_seconds,
            "timeout": settings.http_timeout_seconds,
        }
        options.update(overrides)
        return cls(settings.issuer_url, settings.audience, **options)

    async def metadata(self) -> ProviderMetadata:
        return await self._discovery.get(self.issuer)

    async def _jwks_uri(self) -> str:
        return (await self.metadata()).jwks_uri

    async def validate(
        self,
        token: str,
        *,
        audience: str | None = None,
        token_types: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        """The token's claims if it is valid; raises `InvalidToken` (or `ProviderUnavailable`
        when the provider's keys cannot be fetched: the caller must fail closed)."""
        header = unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenRejected("algorithm", "The token's signing algorithm is not accepted.")
        typ = header.get("typ")
        allowed_types = token_types or self.token_types
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in allowed_types):
            raise TokenRejected("typ", "The token's type is not accepted here.")
        if "crit" in header:
            # No critical extension is understood here, so none may be required (RFC 7515 4.1.11).
            raise TokenRejected("malformed", "The token requires an unsupported extension.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("unknown_kid", "The token does not name its signing key.")
        metadata = await self.metadata()
        key = await self.jwks.key(kid)
        if not isinstance(key, _KEY_TYPE_FOR_ALG[alg]):
            raise TokenRejected("algorithm", "The token's algorithm does not match its key.")
        try:
            decoded = jose_jwt.decode(token, key, algorithms=[alg])
        except JoseError as exc:
            if exc.error in ("bad_signature",):
                raise TokenRejected("signature", "The token's signature is invalid.") from None
            raise TokenRejected("malformed", "The token is malformed.") from None
        except (ValueError, TypeError):
            raise TokenRejected("malformed", "The token is malformed.") from None
        claims = decoded.claims
        self._check_claims(claims, metadata.issuer, audience or self.audience)
        return claims

    def _check_claims(self, claims: dict[str, Any], issuer: str, audience: str) -> None:
        registry = jose_jwt.JWTClaimsRegistry(
            now=int(self._clock()),
            leeway=self.leeway,
            iss={"essential": True, "value": issuer},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise TokenRejected("expired", "The token has expired.") from None
        except MissingClaimError:
            raise TokenRejected("claims", "The token lacks a required claim.") from None
        except InvalidClaimError as exc:
            name = exc.claim
            if name == "iss":
                raise TokenRejected("issuer", "The token was issued by another issuer.") from None
            if name in ("nbf", "iat"):
                raise TokenRejected("not_yet_valid", "The token is not valid yet.") from None
            raise TokenRejected("claims", f"The token's '{name}' claim is invalid.") from None
        except JoseError:
            raise TokenRejected("claims", "The token's claims are invalid.") from None
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise TokenRejected("audience", "The token is meant for another audience.")


def expires_at(claims: dict[str, Any]) -> float:
    """The `exp` of validated claims as epoch seconds."""
    return float(claims["exp"])


def scopes(claims: dict[str, Any]) -> list[str]:
    """The scopes granted by an access token (`scope` string, or Okta's `scp` list)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    scp = claims.get("scp")
    if isinstance(scp, list):
        return [s for s in scp if isinstance(s, str)]
    return []
