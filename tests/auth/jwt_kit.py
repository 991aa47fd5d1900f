"""Test kit: a fake issuer (keys, discovery, JWKS over httpx.MockTransport) and token minting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

ISSUER = "https://issuer.example.com/"
AUDIENCE = "https://api.warrant.local"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


class FakeIssuer:
    """An issuer with an RSA and an EC key; counts discovery and JWKS fetches."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.rsa = RSAKey.generate_key(
            2048, parameters={"kid": "rsa-1", "use": "sig"}, private=True
        )
        self.ec = ECKey.generate_key(
            "P-256", parameters={"kid": "ec-1", "use": "sig"}, private=True
        )
        self.published = [self.rsa, self.ec]
        self.discovery_hits = 0
        self.jwks_hits = 0
        self.fail_jwks = False
        self.discovery_issuer = issuer

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            if path.endswith("/.well-known/openid-configuration"):
                self.discovery_hits += 1
                return httpx.Response(
                    200,
                    json={
                        "issuer": self.discovery_issuer,
                        "jwks_uri": self.issuer + ".well-known/jwks.json",
                        "token_endpoint": self.issuer + "oauth/token",
                        "authorization_endpoint": self.issuer + "authorize",
                    },
                )
            if path.endswith("/.well-known/jwks.json"):
                self.jwks_hits += 1
                if self.fail_jwks:
                    return httpx.Response(503, text="down")
                return httpx.Response(
                    200, json={"keys": [k.as_dict(private=False) for k in self.published]}
                )
            return httpx.Response(404)

        return httpx.MockTransport(handler)

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "auth0|alice",
            "aud": [AUDIENCE, self.issuer + "userinfo"],
            "iat": now,
            "exp": now + 600,
            "scope": "openid profile email",
        }
        for key, value in changes.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return claims

    def mint(
        self,
        key: RSAKey | ECKey | None = None,
        alg: str = "RS256",
        typ: str | None = "at+jwt",
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        key = key or (self.ec if alg.startswith("ES") else self.rsa)
        header: dict[str, Any] = {"alg": alg, "kid": kid or key.kid}
        if typ is not None:
            header["typ"] = typ
        return jwt.encode(header, self.claims(**claims), key, algorithms=[alg])

    def unsigned(self, **claims: Any) -> str:
        header = b64json({"alg": "none", "typ": "at+jwt", "kid": "rsa-1"})
        return f"{header}.{b64json(self.claims(**claims))}."

    def hs256_with_public_key(self, **claims: Any) -> str:
        """The classic confusion attack: HMAC keyed with the published RSA public key."""
        header = b64json({"alg": "HS256", "typ": "at+jwt", "kid": self.rsa.kid})
        payload = b64json(self.claims(**claims))
        secret = self.rsa.as_pem(private=False)
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64(signature)}"

    def keyset(self) -> KeySet:
        return KeySet(self.published)


def tamper(token: str) -> str:
    """Change one claim and keep the old signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "auth0|mallory"
    return f"{header}.{b64json(claims)}.{signature}"
