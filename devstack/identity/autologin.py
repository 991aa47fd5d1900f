"""Programmatic login for tests and the demo: the real authorization code + PKCE flow over HTTP.

It does what a browser and a native app would do (discovery, `/authorize`, the login form, the
redirect, the code exchange) against any provider whose login form looks like the devstack's;
no shortcut around the provider.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from auth.errors import LoginRequired, ProviderUnavailable

DEFAULT_REDIRECT_URI = "http://127.0.0.1:53682/callback"
_STATE_FIELD = re.compile(r"name='state' value='([^']*)'")
_MAX_HOPS = 8


@dataclass(frozen=True)
class TokenSet:
    """The tokens of one login; token strings never appear in `repr`."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    expires_at: float
    scope: str
    token_type: str = "Bearer"

    @classmethod
    def from_response(cls, body: dict, now: float | None = None) -> TokenSet:
        now = time.time() if now is None else now
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            expires_at=now + float(body.get("expires_in", 0)),
            scope=str(body.get("scope", "")),
            token_type=str(body.get("token_type", "Bearer")),
        )


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def login(
    issuer: str,
    email: str,
    password: str,
    *,
    client_id: str,
    scope: str = "openid profile email offline_access",
    audience: str | None = None,
    client_secret: str | None = None,
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    timeout: float = 10.0,  # noqa: ASYNC109 - the HTTP client timeout, not a deadline
    http: httpx.AsyncClient | None = None,
) -> TokenSet:
    """Log `email` in at `issuer` and return the tokens. Raises `LoginRequired` when the provider
    refuses (wrong password, error redirect, refused code exchange), `ProviderUnavailable` when
    it cannot be reached or answers nonsense."""
    own = http is None
    client = http or httpx.AsyncClient(timeout=timeout)
    try:
        return await _login(
            client, issuer, email, password, client_id, scope, audience, client_secret, redirect_uri
        )
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("the identity provider", type(exc).__name__) from None
    finally:
        if own:
            await client.aclose()


async def _login(
    http: httpx.AsyncClient,
    issuer: str,
    email: str,
    password: str,
    client_id: str,
    scope: str,
    audience: str | None,
    client_secret: str | None,
    redirect_uri: str,
) -> TokenSet:
    base = issuer.rstrip("/") + "/"
    discovery = await http.get(base + ".well-known/openid-configuration")
    if discovery.status_code != 200:
        raise ProviderUnavailable(
            "the identity provider", f"discovery HTTP {discovery.status_code}"
        )
    meta = discovery.json()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if audience:
        params["audience"] = audience
    response = await http.get(meta["authorization_endpoint"], params=params)
    logged_in = False
    for _ in range(_MAX_HOPS):
        location = response.headers.get("location")
        if response.status_code in (301, 302, 303, 307) and location:
            target = urljoin(str(response.url), location)
            if target.startswith(redirect_uri):
                return await _exchange(
                    http, meta, target, state, verifier, client_id, client_secret, redirect_uri
                )
            response = await http.get(target)
            continue
        if response.status_code == 200 and not logged_in and "/u/login" in str(response.url):
            found = _STATE_FIELD.search(response.text)
            if not found:
                raise ProviderUnavailable("the identity provider", "no login form")
            logged_in = True
            response = await http.post(
                urljoin(str(response.url), "/u/login"),
                data={"state": found.group(1), "email": email, "password": password},
            )
            continue
        if response.status_code == 401:
            raise LoginRequired(f"The provider refused the login for {email}.")
        raise LoginRequired(
            f"The login flow stopped with HTTP {response.status_code} "
            f"at {urlsplit(str(response.url)).path}."
        )
    raise ProviderUnavailable("the identity provider", "too many redirects during login")


async def _exchange(
    http: httpx.AsyncClient,
    meta: dict,
    callback: str,
    state: str,
    verifier: str,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
) -> TokenSet:
    query = parse_qs(urlsplit(callback).query)
    if query.get("state") != [state]:
        raise LoginRequired("The provider answered with a state that does not match.")
    if "error" in query:
        description = query.get("error_description", [""])[0]
        raise LoginRequired(f"The provider refused the login: {query['error'][0]} {description}")
    data = {
        "grant_type": "authorization_code",
        "code": query.get("code", [""])[0],
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
    }
    if client_secret:
        data["client_secret"] = client_secret
    answer = await http.post(meta["token_endpoint"], data=data)
    try:
        body = answer.json()
    except ValueError:
        raise ProviderUnavailable(
            "the identity provider", "token endpoint answered non-JSON"
        ) from None
    if answer.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error", "unknown_error") if isinstance(body, dict) else "unknown_error"
        raise LoginRequired(f"The provider refused the code exchange: {error}")
    return TokenSet.from_response(body)
