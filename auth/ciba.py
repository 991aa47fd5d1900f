"""OpenID Client-Initiated Backchannel Authentication (CIBA Core 1.0), client side.

The agent asks the identity provider to push an approval request to the user's authenticator
(`start`), then collects the decision from the token endpoint (`poll`). Endpoints come from the
provider's discovery document, so the same client works against Auth0 and any provider that
publishes `backchannel_authentication_endpoint`. Tokens a grant returns stay in memory only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from auth.errors import (
    ApprovalDenied,
    ApprovalExpired,
    ApprovalPending,
    AuthError,
    InvalidToken,
    ProviderUnavailable,
    provider_text,
)
from auth.jwt import ID_TOKEN_TYPES, JWTValidator

CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
DEFAULT_INTERVAL = 5.0  # CIBA Core 7.3: the client polls every 5 s when the provider says nothing
SLOW_DOWN_STEP = 5.0  # CIBA Core 11 / RFC 8628 3.5: every later poll waits 5 s more
BINDING_MESSAGE_MAX = 64  # Auth0's limit, within every provider's
# Auth0's binding-message characters (letters, digits, whitespace, `+-_.,:#`) minus what must
# never appear: CR, LF and tab (whitespace to Auth0, invisible or layout-changing on a phone)
# and `+`, which starts escapes here.
_BINDING_PLAIN = frozenset(string.ascii_letters + string.digits + " -_.,:#")
_CUT = "..."
REQUEST_CODE_LENGTH = 5
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a phone
_SERVICE = "The identity provider"
# An approval's ID token is minted when the grant is redeemed (this very poll): one older than
# this (beyond the clock leeway) answers something else, or is replayed.
ID_TOKEN_MAX_AGE_SECONDS = 300.0
AUTH_REQ_ID_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"  # CIBA Core 10.3.1

Metadata = Mapping[str, Any]


def escape_binding_text(text: str) -> str:
    """`text` in Auth0's binding-message characters, every other character shown, not dropped.

    A character outside the set (a Cyrillic o that looks like a Latin one, a tab, a newline)
    becomes its code point, `U+043E`: visible on the authenticator, so a look-alike name cannot
    pass unseen. A literal `+` is escaped too (`U+002B`): every `+` in a message starts an escape.
    """
    return "".join(c if c in _BINDING_PLAIN else f"U+{ord(c):04X}" for c in text)


def request_code() -> str:
    """A short random code that tells two requests for the same action apart on the device."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(REQUEST_CODE_LENGTH))


def binding_message(text: str, digest: str | None = None, code: str | None = None) -> str:
    """A valid binding message: Auth0's characters only, at most 64 long, never CR/LF/tab.

    `digest` (its first six characters) and `code` (`request_code()`) end the message, so that
    the user sees on both devices which exact action, and which request, they are approving.
    A text too long for the rest is cut between characters (never inside an escape) and ends
    with `...`, so a shortened message never reads as a complete one.
    """
    tail = [f"#{digest[:6]}"] if digest else []
    if code:
        tail.append(escape_binding_text(code))
    suffix = (" " + " ".join(tail)) if tail else ""
    room = BINDING_MESSAGE_MAX - len(suffix)
    pieces = [escape_binding_text(c) for c in text.strip(" ")]
    body = "".join(pieces)
    if len(body) > room:
        kept, size = [], 0
        for piece in pieces:
            if size + len(piece) > room - len(_CUT):
                break
            kept.append(piece)
            size += len(piece)
        body = "".join(kept).rstrip(" ") + _CUT
    return (body or "Approve action") + suffix


def authorization_details(tool_name: str, digest: str, **extra: Any) -> list[dict[str, Any]]:
    """The Rich Authorization Request that binds an approval to one tool call."""
    return [{"type": "warrant_tool_call", "tool": tool_name, "action_digest": digest, **extra}]


@dataclass
class ApprovalRequest:
    """A request the provider accepted; `interval` grows when the provider says `slow_down`."""

    auth_req_id: str
    user_id: str
    binding_message: str
    expires_at: float
    interval: float = DEFAULT_INTERVAL
    not_before: float = 0.0  # the earliest next poll (interval, Retry-After)
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    started_at: float | None = None  # when it was sent: no ID token for it can be older

    def expired(self, now: float | None = None) -> bool:
        """True when the expiry the provider announced has passed."""
        return (now if now is not None else time.time()) >= self.expires_at


@dataclass(frozen=True)
class ApprovalGranted:
    """The user approved: the tokens the CIBA grant returned for that user (memory only)."""

    access_token: str = field(repr=False)
    expires_at: float
    scope: str = ""
    token_type: str = "Bearer"
    id_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)


class ApprovalUnverified(AuthError):
    """The token endpoint said "approved", but its answer does not prove that the user this
    request was for approved it (no ID token, a bad signature, another user or audience, an old
    token). Nothing may run on it; `reason` says why in words and never quotes a token."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"The identity provider's approval could not be verified ({reason}); nothing was done."
        )


class CIBAClient:
    """A confidential client that starts CIBA requests and polls for their outcome.

    A grant counts only with a valid ID token (OpenID Connect Core 3.1.3.7, as CIBA Core 10.1.1
    returns one): signed by a key from the issuer's JWKS, `iss` the issuer, `aud` (and `azp`)
    this client, `sub` the user the request was for, issued after the request and recently.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        metadata: Metadata | Callable[[], Awaitable[Metadata]] | None = None,
        clock: Callable[[], float] = time.time,
        id_tokens: JWTValidator | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/") + "/"
        self._client_id = client_id
        # The ID token's audience is this client (not the API): one validator per client.
        self._id_tokens = id_tokens or JWTValidator(
            self.issuer, client_id, token_types=ID_TOKEN_TYPES, clock=clock, timeout=timeout
        )
        self._client_secret = client_secret
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self._metadata_source = metadata
        self._metadata: Metadata | None = metadata if isinstance(metadata, Mapping) else None
        self._clock = clock

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def metadata(self) -> Metadata:
        """The provider's discovery document (fetched once)."""
        if self._metadata is None:
            if callable(self._metadata_source):
                self._metadata = await self._metadata_source()
            else:
                url = f"{self.issuer}.well-known/openid-configuration"
                self._metadata = await self._json(await self._send("GET", url), "discovery")
        return self._metadata

    async def _endpoint(self, name: str) -> str:
        meta = await self.metadata()
        value = meta.get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ProviderUnavailable(_SERVICE, f"its discovery document has no {name}")
        return value

    async def start(
        self,
        user_id: str,
        binding_message: str,
        scopes: Sequence[str],
        audience: str | None = None,
        requested_expiry: int | None = None,
        authorization_details: list[dict[str, Any]] | None = None,
        notification_token: str | None = None,
    ) -> ApprovalRequest:
        """Ask the provider to push an approval request to `user_id`'s authenticator."""
        scope_list = list(dict.fromkeys(["openid", *scopes]))
        form: dict[str, str] = {
            "login_hint": json.dumps(
                {"format": "iss_sub", "iss": self.issuer, "sub": user_id}, separators=(",", ":")
            ),
            "scope": " ".join(scope_list),
            "binding_message": binding_message,
        }
        if audience:
            form["audience"] = audience
        if requested_expiry is not None:
            form["requested_expiry"] = str(int(requested_expiry))
        if authorization_details is not None:
            form["authorization_details"] = json.dumps(authorization_details, separators=(",", ":"))
        if notification_token is not None:
            form["client_notification_token"] = notification_token
        url = await self._endpoint("backchannel_authentication_endpoint")
        response = await self._post(url, form)
        body = await self._json(response, "backchannel authentication")
        if response.status_code != 200:
            raise _request_error(
                response.status_code, body, (self._client_secret, notification_token)
            )
        auth_req_id = body.get("auth_req_id")
        expires_in = body.get("expires_in")
        interval = body.get("interval", DEFAULT_INTERVAL)
        if (
            not isinstance(auth_req_id, str)
            or not auth_req_id
            or not _positive_number(expires_in)
            or not _positive_number(interval, allow_zero=True)
        ):
            raise ProviderUnavailable(_SERVICE, "it answered the approval request with nonsense")
        now = self._clock()
        return ApprovalRequest(
            auth_req_id=auth_req_id,
            user_id=user_id,
            binding_message=binding_message,
            expires_at=now + float(expires_in),
            interval=float(interval),
            not_before=now + float(interval),
            scopes=tuple(scope_list),
            audience=audience,
            started_at=now,
        )

    async def poll(self, request: ApprovalRequest) -> ApprovalGranted:
        """Ask once whether the user answered; raise unless they approved.

        `ApprovalUnverified` when the provider says "approved" without proving it for this
        request's user: the grant is spent, and nothing may run on it.
        """
        url = await self._endpoint("token_endpoint")
        response = await self._post(
            url, {"grant_type": CIBA_GRANT_TYPE, "auth_req_id": request.auth_req_id}
        )
        body = await self._json(response, "token")
        now = self._clock()
        if response.status_code == 200:
            granted = _granted(body, now)
            await self.verify_grant(granted, request)
            return granted
        error = body.get("error")
        if error == "authorization_pending":
            request.not_before = now + request.interval
            raise ApprovalPending(request.interval)
        if error == "slow_down" or response.status_code == 429:
            request.interval += SLOW_DOWN_STEP
            retry_after = _retry_after(response)
            request.not_before = now + max(request.interval, retry_after)
            raise ApprovalPending(request.interval)
        if error == "expired_token":
            raise ApprovalExpired()
        if error == "access_denied":
            # Auth0 answers access_denied for an expiry too; the expiry we tracked tells them apart.
            if request.expired(now):
                raise ApprovalExpired()
            raise ApprovalDenied()
        if error == "invalid_grant":
            if request.expired(now):
                raise ApprovalExpired()
            raise ApprovalDenied(
                "The identity provider no longer knows this approval request; nothing was done."
            )
        if response.status_code >= 500:
            raise ProviderUnavailable(_SERVICE, f"HTTP {response.status_code}")
        raise ProviderUnavailable(
            _SERVICE,
            f"unexpected answer to the approval poll ({_error_label(body, self._client_secret)})",
        )

    async def verify_grant(self, granted: ApprovalGranted, request: ApprovalRequest) -> None:
        """Raise `ApprovalUnverified` unless the grant's ID token proves that `request.user_id`
        approved, just now, at this issuer, for this client (`ProviderUnavailable` when the
        issuer's keys cannot be fetched: fail closed)."""
        if not granted.id_token:
            raise ApprovalUnverified("the answer carried no ID token")
        try:
            claims = await self._id_tokens.validate(
                granted.id_token, audience=self._client_id, token_types=ID_TOKEN_TYPES
            )
        except InvalidToken as exc:  # its message is written to be shown; it quotes no token
            raise ApprovalUnverified(f"its ID token was refused: {exc}") from None
        now, leeway = self._clock(), float(self._id_tokens.leeway)
        if claims.get("sub") != request.user_id:
            raise ApprovalUnverified("the ID token is for another user")
        azp = claims.get("azp")
        if azp is not None and azp != self._client_id:
            raise ApprovalUnverified("the ID token was issued to another client")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise ApprovalUnverified("the ID token does not say when it was issued")
        oldest = now - ID_TOKEN_MAX_AGE_SECONDS
        if request.started_at is not None:
            oldest = max(oldest, request.started_at)
        if iat < oldest - leeway or iat > now + leeway:
            raise ApprovalUnverified("the ID token was not issued for this approval (its iat)")
        at_hash = claims.get("at_hash")
        if at_hash is not None and not _hash_matches(at_hash, granted.access_token):
            raise ApprovalUnverified("the ID token does not belong to the access token")
        bound = claims.get(AUTH_REQ_ID_CLAIM)
        if bound is not None and bound != request.auth_req_id:
            raise ApprovalUnverified("the ID token answers another approval request")

    async def _post(self, url: str, form: dict[str, str]) -> httpx.Response:
        # client_secret_post: what Auth0 documents for CIBA, and every provider accepts it.
        return await self._send(
            "POST",
            url,
            data={**form, "client_id": self._client_id, "client_secret": self._client_secret},
        )

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(
                method, url, headers={"Accept": "application/json"}, **kwargs
            )
        except httpx.TimeoutException:
            raise ProviderUnavailable(_SERVICE, "it did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                _SERVICE, f"it could not be reached: {type(exc).__name__}"
            ) from None
        if response.status_code >= 500:
            raise ProviderUnavailable(_SERVICE, f"HTTP {response.status_code}")
        return response

    @staticmethod
    async def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ProviderUnavailable(_SERVICE, f"its {what} answer was not JSON") from None
        if not isinstance(body, dict):
            raise ProviderUnavailable(_SERVICE, f"its {what} answer was not a JSON object")
        return body


def _request_error(
    status: int, body: dict[str, Any], secrets: tuple[str | None, ...] = ()
) -> Exception:
    """The provider refused to start the request: say why in words, keep the OAuth code."""
    error = body.get("error")
    description = body.get("error_description")
    detail = f"{error}: {description}" if description else str(error or f"HTTP {status}")
    # The provider may echo the request (the client secret, the notification token).
    detail = provider_text(detail, secrets)
    if error == "access_denied":
        return ApprovalDenied(f"The identity provider refused the approval request ({detail}).")
    if error in {"expired_login_hint_token", "unknown_user_id"}:
        return ApprovalDenied(f"The identity provider does not know this user ({detail}).")
    return ProviderUnavailable(_SERVICE, f"it refused the approval request ({detail})")


def _granted(body: dict[str, Any], now: float) -> ApprovalGranted:
    access_token = body.get("access_token")
    expires_in = body.get("expires_in", 0)
    if (
        not isinstance(access_token, str)
        or not access_token
        or not _positive_number(expires_in, allow_zero=True)
    ):
        raise ProviderUnavailable(_SERVICE, "it approved, but returned no usable token")
    return ApprovalGranted(
        access_token=access_token,
        expires_at=now + float(expires_in),
        scope=str(body.get("scope", "")),
        token_type=str(body.get("token_type", "Bearer")),
        id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
        refresh_token=body.get("refresh_token")
        if isinstance(body.get("refresh_token"), str)
        else None,
    )


def _hash_matches(claimed: Any, token: str) -> bool:
    """OpenID Connect `at_hash`: the left half of the token's SHA-256, base64url (every
    algorithm this client accepts, RS256, PS256 and ES256, hashes with SHA-256)."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=")
    return isinstance(claimed, str) and hmac.compare_digest(expected, claimed.encode())


def _positive_number(value: Any, *, allow_zero: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value >= 0 if allow_zero else value > 0


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def _error_label(body: dict[str, Any], *secrets: str) -> str:
    error = body.get("error")
    return provider_text(error, secrets) if isinstance(error, str) else "no error code"


def notification_token_digest(token: str) -> str:
    """How a ping notification token is compared and stored: never in the clear."""
    return hashlib.sha256(token.encode()).hexdigest()
