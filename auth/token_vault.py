"""Token Vault client: a short-lived third-party token for the user, exchanged only when needed.

The agent never holds the user's long-lived GitHub credential. It presents the user's own token
to the identity provider (Auth0's federated-connection-access-token grant, exactly as Auth0
speaks it) and gets back the upstream provider's access token. Tokens are cached in this process
only, keyed by user, connection and scope set, and are never logged, printed or returned to the
model.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from auth.errors import (
    ConnectionRequired,
    ConnectionTokenRejected,
    LoginRequired,
    ProviderUnavailable,
    provider_text,
)

GRANT_TYPE = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
REQUESTED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"
SUBJECT_TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPE_REFRESH = "urn:ietf:params:oauth:token-type:refresh_token"
SUBJECT_TOKEN_TYPES = (SUBJECT_TOKEN_TYPE_ACCESS, SUBJECT_TOKEN_TYPE_REFRESH)
NOT_CONNECTED = "federated_connection_refresh_token_not_found"
# Auth0 omits expires_in for some upstreams; such a token is reused for a short while only.
DEFAULT_LIFETIME = 300.0
DEFAULT_CONNECT_URL = "{issuer}connected-accounts/connect?connection={connection}&scopes={scopes}"

_SERVICE = "The identity provider"
_SCOPE_SPLIT = re.compile(r"[\s,]+")
log = logging.getLogger(__name__)

Metadata = Mapping[str, Any]
T = TypeVar("T")


def parse_scopes(value: str | Iterable[str] | None) -> frozenset[str]:
    """Scopes from a space- or comma-separated string (GitHub writes commas) or a list."""
    if value is None:
        return frozenset()
    parts = [value] if isinstance(value, str) else list(value)
    return frozenset(s for part in parts for s in _SCOPE_SPLIT.split(str(part)) if s)


@dataclass(frozen=True)
class ConnectionToken:
    """An upstream access token for one user and connection; lives in memory only."""

    access_token: str = field(repr=False)
    connection: str
    expires_at: float
    scopes: frozenset[str]
    token_type: str = "Bearer"

    def expires_in(self, now: float | None = None) -> float:
        """Seconds left before the upstream provider stops accepting the token."""
        return self.expires_at - (now if now is not None else time.time())


@dataclass
class _Entry:
    token: ConnectionToken
    fresh_until: float
    subject_digest: str


_Key = tuple[str, str, frozenset[str]]


class TokenVault:
    """Exchanges the user's token for a connection's access token; caches it per user."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        metadata: Metadata | Callable[[], Awaitable[Metadata]] | None = None,
        connect_url: str = DEFAULT_CONNECT_URL,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/") + "/"
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = http
        self._timeout = timeout
        self._metadata_source = metadata
        self._token_endpoint: str | None = None
        self._connect_url = connect_url
        self._margin = refresh_margin
        self._clock = clock
        self._cache: dict[_Key, _Entry] = {}
        # One exchange in flight per key and event loop: concurrent first callers share it.
        self._inflight: dict[tuple[int, _Key, str], asyncio.Task[_Entry]] = {}
        self.exchanges = 0  # exchanges sent to the provider (for the benchmark and tests)

    def connect_url(self, connection: str, scopes: Iterable[str]) -> str:
        """Where the user connects `connection` with `scopes` (the devstack page or your app's)."""
        return self._connect_url.format(
            issuer=self.issuer,
            connection=quote(connection, safe=""),
            scopes=quote(" ".join(sorted(parse_scopes(scopes))), safe=""),
        )

    def connection_required(
        self, connection: str, scopes: Iterable[str], missing: Iterable[str] | None = None
    ) -> ConnectionRequired:
        """The error that asks the user to (re)connect `connection` with `scopes`."""
        wanted = sorted(parse_scopes(scopes))
        gap = sorted(parse_scopes(missing)) if missing is not None else wanted
        return ConnectionRequired(
            connection, sorted(set(wanted) | set(gap)), self.connect_url(connection, wanted), gap
        )

    def reconnect_error(
        self, rejected: ConnectionTokenRejected, scopes: Iterable[str]
    ) -> ConnectionRequired:
        """What a tool's second refusal becomes: connect again (with any scope it lacked)."""
        wanted = parse_scopes(scopes) | set(rejected.missing_scopes)
        return self.connection_required(
            rejected.connection, wanted, rejected.missing_scopes or wanted
        )

    def invalidate(self, user_id: str, connection: str | None = None) -> int:
        """Forget `user_id`'s cached tokens (for one connection, or all); returns how many."""
        stale = [k for k in self._cache if k[0] == user_id and connection in (None, k[1])]
        for key in stale:
            del self._cache[key]
        return len(stale)

    def clear(self) -> None:
        """Forget every cached token (tests, logout of everyone)."""
        self._cache.clear()

    async def get_token(
        self,
        *,
        user_id: str,
        subject_token: str,
        subject_token_type: str = SUBJECT_TOKEN_TYPE_ACCESS,
        connection: str = "github",
        scopes: Sequence[str] = (),
        login_hint: str | None = None,
    ) -> ConnectionToken:
        """A token for `connection` carrying `scopes`, from the cache or one exchange.

        Raises `ConnectionRequired` (never connected, or fewer scopes granted than needed),
        `LoginRequired` (the user's own token was refused) or `ProviderUnavailable`.
        """
        if not user_id or not subject_token:
            raise LoginRequired("You need to log in before the agent can act for you.")
        if subject_token_type not in SUBJECT_TOKEN_TYPES:
            raise ValueError(f"unsupported subject token type: {subject_token_type}")
        wanted = parse_scopes(scopes)
        key: _Key = (user_id, connection, wanted)
        # A cache entry serves only the caller presenting the same user token it was made with:
        # a wrong user_id paired with another user's token can never read that user's entry.
        digest = hashlib.sha256(subject_token.encode()).hexdigest()
        entry = self._cache.get(key)
        if entry and entry.subject_digest == digest and self._clock() < entry.fresh_until:
            return entry.token

        loop_key = (id(asyncio.get_running_loop()), key, digest)
        task = self._inflight.get(loop_key)
        if task is None:
            task = asyncio.ensure_future(
                self._exchange(
                    key, digest, subject_token, subject_token_type, connection, wanted, login_hint
                )
            )
            self._inflight[loop_key] = task

            def _done(finished: asyncio.Task[_Entry]) -> None:
                self._inflight.pop(loop_key, None)
                if not finished.cancelled():
                    finished.exception()  # retrieved: no warning when every waiter left

            task.add_done_callback(_done)
        # shield: a caller cancelled while waiting must not cancel the exchange others share.
        return (await asyncio.shield(task)).token

    async def run_with_token(
        self,
        call: Callable[[ConnectionToken], Awaitable[T]],
        *,
        user_id: str,
        subject_token: str,
        subject_token_type: str = SUBJECT_TOKEN_TYPE_ACCESS,
        connection: str = "github",
        scopes: Sequence[str] = (),
        login_hint: str | None = None,
    ) -> T:
        """Run `call` with a token; when the API refuses it, exchange anew and retry once.

        This is what the `tools` node does for a tool with a `ConnectionRequirement`: a refusal
        (`ConnectionTokenRejected`: revoked, expired early, missing scope) invalidates the cached
        token and retries with a fresh exchange; a second refusal becomes `ConnectionRequired`.
        """
        args = {
            "user_id": user_id,
            "subject_token": subject_token,
            "subject_token_type": subject_token_type,
            "connection": connection,
            "scopes": scopes,
            "login_hint": login_hint,
        }
        try:
            return await call(await self.get_token(**args))
        except ConnectionTokenRejected as first:
            log.info(
                "token vault: %s refused the %s token; retrying once", first.service, connection
            )
            self.invalidate(user_id, connection)
            # A missing scope is asked for on the retry, so a fresh grant lacking it says so.
            args["scopes"] = sorted(parse_scopes(scopes) | set(first.missing_scopes))
        try:
            return await call(await self.get_token(**args))
        except ConnectionTokenRejected as second:
            self.invalidate(user_id, connection)
            raise self.reconnect_error(second, args["scopes"]) from None

    async def _exchange(
        self,
        key: _Key,
        digest: str,
        subject_token: str,
        subject_token_type: str,
        connection: str,
        wanted: frozenset[str],
        login_hint: str | None,
    ) -> _Entry:
        form = {
            "grant_type": GRANT_TYPE,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "subject_token": subject_token,
            "subject_token_type": subject_token_type,
            "requested_token_type": REQUESTED_TOKEN_TYPE,
            "connection": connection,
        }
        if login_hint:
            form["login_hint"] = login_hint
        endpoint = await self.token_endpoint()
        self.exchanges += 1
        response = await self._send("POST", endpoint, data=form)
        body = _json_object(response, "token exchange")
        if response.status_code != 200:
            secrets = (subject_token, self._client_secret, login_hint)
            await _audit_exchange(key[0], connection, wanted, f"refused: {body.get('error')}")
            raise self._refusal(response.status_code, body, connection, wanted, secrets)
        now = self._clock()
        token = _connection_token(body, connection, now)
        missing = wanted - token.scopes
        if missing:
            log.info(
                "token vault: %s connection for user %s lacks scopes %s",
                connection,
                key[0],
                sorted(missing),
            )
            raise self.connection_required(connection, wanted, missing)
        lifetime = max(0.0, token.expires_at - now)
        # Reuse until shortly before expiry; a short-lived token keeps at least half its life.
        entry = _Entry(token, now + max(0.0, lifetime - min(self._margin, lifetime / 2)), digest)
        self._cache[key] = entry
        log.info("token vault: exchanged a %s token for user %s", connection, key[0])
        await _audit_exchange(key[0], connection, token.scopes, "allowed")
        return entry

    def _refusal(
        self,
        status: int,
        body: dict[str, Any],
        connection: str,
        wanted: frozenset[str],
        secrets: tuple[str | None, ...] = (),
    ) -> Exception:
        error = body.get("error")
        description = body.get("error_description")
        detail = f"{error}: {description}" if isinstance(description, str) else str(error)
        # The provider may echo the request (the user's token, the client secret): never show it.
        detail = provider_text(detail, secrets)
        if error == NOT_CONNECTED:
            return self.connection_required(connection, wanted)
        if error == "invalid_grant" or (status == 401 and error == "invalid_token"):
            return LoginRequired(
                "The identity provider no longer accepts your sign-in; log in again "
                f"(for example `warrant login`). ({detail})"
            )
        if status == 429:
            return ProviderUnavailable(_SERVICE, "it is rate limiting token exchanges")
        if error in {"invalid_client", "unauthorized_client"}:
            # A configuration problem (client id, secret, or the grant not enabled for it).
            return ProviderUnavailable(
                _SERVICE, f"it refused the agent's client for Token Vault exchanges ({detail})"
            )
        if isinstance(error, str):
            return ProviderUnavailable(_SERVICE, f"it refused the token exchange ({detail})")
        return ProviderUnavailable(_SERVICE, f"it answered the token exchange with HTTP {status}")

    async def token_endpoint(self) -> str:
        """The provider's token endpoint: from discovery, or Auth0's `{issuer}oauth/token`."""
        if self._token_endpoint is not None:
            return self._token_endpoint
        fallback = f"{self.issuer}oauth/token"
        try:
            meta = await self._metadata()
        except ProviderUnavailable as exc:
            # No discovery right now: use Auth0's path this time, ask again next exchange.
            log.warning("token vault: discovery unavailable (%s); using %s", exc.reason, fallback)
            return fallback
        value = meta.get("token_endpoint")
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            self._token_endpoint = value
        else:
            self._token_endpoint = fallback
        return self._token_endpoint

    async def _metadata(self) -> Metadata:
        source = self._metadata_source
        if isinstance(source, Mapping):
            return source
        if callable(source):
            return await source()
        url = f"{self.issuer}.well-known/openid-configuration"
        response = await self._send("GET", url)
        if response.status_code != 200:
            raise ProviderUnavailable(_SERVICE, f"discovery answered HTTP {response.status_code}")
        return _json_object(response, "discovery")

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Accept": "application/json"}
        try:
            if self._http is not None:
                response = await self._http.request(method, url, headers=headers, **kwargs)
            else:
                # A client per exchange: exchanges are rare (cached), and a pooled client would
                # tie this process-wide vault to whichever event loop used it first.
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    response = await http.request(method, url, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise ProviderUnavailable(_SERVICE, "it did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                _SERVICE, f"it could not be reached: {type(exc).__name__}"
            ) from None
        if response.status_code >= 500:
            raise ProviderUnavailable(_SERVICE, f"HTTP {response.status_code}")
        return response


async def _audit_exchange(
    user_id: str, connection: str, scopes: Iterable[str], outcome: str
) -> None:
    from auth.audit import AuditEvent, agent_id, note

    await note(
        AuditEvent.TOKEN_EXCHANGE,
        outcome,
        sub=user_id,
        act=agent_id(),
        object=f"connection:{connection}",
        reason="Token Vault exchange",
        detail={"scopes": sorted(scopes)},
    )


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ProviderUnavailable(_SERVICE, f"its {what} answer was not JSON") from None
    if not isinstance(body, dict):
        raise ProviderUnavailable(_SERVICE, f"its {what} answer was not a JSON object")
    return body


def _connection_token(body: dict[str, Any], connection: str, now: float) -> ConnectionToken:
    access_token = body.get("access_token")
    expires_in = body.get("expires_in", DEFAULT_LIFETIME)
    scope = body.get("scope")
    token_type = body.get("token_type", "Bearer")
    if (
        not isinstance(access_token, str)
        or not access_token.strip()
        or isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or expires_in <= 0
        or not isinstance(scope, str | list | type(None))
        or not isinstance(token_type, str)
    ):
        raise ProviderUnavailable(_SERVICE, "it answered the token exchange with nonsense")
    # Auth0 writes `scope` when the issued scopes differ from the grant; without it nothing is
    # known, and a tool that needs scopes is asked to reconnect rather than to guess (fail closed).
    return ConnectionToken(
        access_token=access_token,
        connection=connection,
        expires_at=now + float(expires_in),
        scopes=parse_scopes(scope),
        token_type=token_type,
    )


_vaults: dict[tuple[str, ...], TokenVault] = {}


def get_token_vault() -> TokenVault:
    """The process-wide vault for the current settings (one cache per provider and client)."""
    from settings import get_settings

    s = get_settings()
    key = (
        s.issuer_url,
        s.agent_client_id,
        s.agent_client_secret.get_secret_value(),
        s.token_vault_connect_url,
    )
    vault = _vaults.get(key)
    if vault is None:
        vault = TokenVault(
            s.issuer_url,
            s.agent_client_id,
            s.agent_client_secret.get_secret_value(),
            timeout=s.http_timeout_seconds,
            connect_url=s.token_vault_connect_url,
            refresh_margin=s.token_vault_refresh_margin_seconds,
        )
        _vaults[key] = vault
    return vault
