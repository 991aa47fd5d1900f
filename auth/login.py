"""CLI login: device flow (RFC 8628) and authorization code + PKCE with a loopback redirect
(RFC 8252, RFC 7636), refresh, logout; the tokens live in a file only the user can read.

The CLI is a public client: no secret, so PKCE (S256) protects the code and the loopback
listener binds 127.0.0.1 on an ephemeral port for exactly one callback. Every token the
provider returns is validated (auth/jwt.py) before it is stored; the ID token also has its
`nonce` checked. The token file is written atomically with mode 0600 in a 0700 folder, and a
file that others can read is refused rather than used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from auth.errors import InvalidToken, LoginRequired, ProviderUnavailable
from auth.jwt import ID_TOKEN_TYPES, JWTValidator
from auth.oidc import SERVICE, DiscoveryCache, ProviderMetadata, normalize_issuer
from settings import get_settings

DEFAULT_SCOPE = "openid profile email offline_access"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_FILE = Path("cli") / "tokens.json"
# Refresh a little before expiry so a command never starts with a token about to die.
REFRESH_MARGIN_SECONDS = 60.0
_CALLBACK_PATH = "/callback"
_MAX_REQUEST_BYTES = 16_384
_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Warrant</title></head>"
    "<body style='font-family:system-ui;margin:4rem'><h1>{title}</h1><p>{text}</p></body></html>"
)


@dataclass(frozen=True)
class TokenSet:
    """One login's tokens and who they are for; token strings never appear in `repr`."""

    access_token: str = field(repr=False)
    expires_at: float
    issuer: str
    client_id: str
    audience: str
    subject: str
    email: str = ""
    scope: str = ""
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)

    def expired(self, now: float | None = None, margin: float = 0.0) -> bool:
        return (time.time() if now is None else now) + margin >= self.expires_at

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DeviceCode:
    """What the user needs to approve a device login (safe to print: no token in it)."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float
    device_code: str = field(repr=False, default="")


@dataclass(frozen=True)
class LogoutResult:
    removed: bool
    revoked: bool
    detail: str = ""


# the token file -----------------------------------------------------------------------------


class TokenFile:
    """The CLI's stored login: JSON, mode 0600, replaced atomically, refused if others can read."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or (get_settings().data_dir / TOKEN_FILE)

    def save(self, tokens: TokenSet) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o700)
        # mkstemp creates the file with 0600 from the start: no moment where it is readable
        # by others; os.replace makes the switch atomic (a reader sees old or new, never half).
        fd, temp = tempfile.mkstemp(prefix=".tokens-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(tokens.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def load(self) -> TokenSet | None:
        """The stored login, or None. Raises `LoginRequired` for an unsafe or unreadable file."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise LoginRequired(
                f"{self.path} can be read by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                "it was not used. Run `warrant logout` and log in again."
            )
        try:
            return TokenSet.from_json(self.path.read_text(encoding="utf-8"))
        except (ValueError, TypeError, OSError):
            raise LoginRequired(
                "The stored login is unreadable; log in again with `warrant login`."
            ) from None

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


# PKCE and the loopback listener -------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge) pair (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class LoopbackListener:
    """Waits for one authorization response on http://127.0.0.1:<ephemeral>/callback."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[dict[str, str]] | None = None
        self.port = 0

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{_CALLBACK_PATH}"

    async def __aenter__(self) -> LoopbackListener:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, host="127.0.0.1", port=0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)

    async def wait(self, seconds: float) -> dict[str, str]:
        assert self._result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), seconds)
        except TimeoutError:
            raise LoginRequired(
                "No answer from the browser in time; the login was abandoned."
            ) from None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, title, text = 404, "Not found", "Nothing here."
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            if len(head) > _MAX_REQUEST_BYTES:
                raise ValueError("request too large")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            parts = urlsplit(target)
            if method == "GET" and parts.path == _CALLBACK_PATH:
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if self._result is not None and not self._result.done():
                    self._result.set_result(query)
                    status = 200
                    if "error" in query:
                        title, text = "Login not completed", "You can close this window."
                    else:
                        title, text = "Logged in", "You can close this window and return."
                else:
                    status, title, text = 409, "Already answered", "This login is finished."
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, title, text = 400, "Bad request", "Malformed request."
        body = _PAGE.format(title=title, text=text).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


# the client ---------------------------------------------------------------------------------


class LoginClient:
    """Logs the CLI's user in at the configured provider, refreshes and revokes."""

    def __init__(
        self,
        issuer: str | None = None,
        *,
        client_id: str | None = None,
        audience: str | None = None,
        scope: str = DEFAULT_SCOPE,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = get_settings()
        self.issuer = normalize_issuer(issuer or settings.issuer_url)
        self.client_id = client_id or settings.cli_client_id
        self.audience = audience or settings.audience
        self.scope = scope
        self._transport = transport
        self._timeout = settings.http_timeout_seconds if timeout is None else timeout
        self._sleep = sleep
        self._clock = clock
        self._discovery = DiscoveryCache(transport=transport, timeout=self._timeout)
        self.validator = JWTValidator(
            self.issuer,
            self.audience,
            leeway=settings.jwt_leeway_seconds,
            jwks_min_refresh_seconds=settings.jwks_min_refresh_seconds,
            discovery=self._discovery,
            transport=transport,
            timeout=self._timeout,
        )

    async def metadata(self) -> ProviderMetadata:
        return await self._discovery.get(self.issuer)

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, transport=self._transport)

    async def _post(self, url: str, data: dict[str, str], what: str) -> tuple[int, dict[str, Any]]:
        try:
            async with self._http() as http:
                response = await http.post(url, data=data, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise ProviderUnavailable(SERVICE, f"{what} timed out") from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(SERVICE, f"{what} failed: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise ProviderUnavailable(SERVICE, f"{what} answered HTTP {response.status_code}")
        if not response.content:
            return response.status_code, {}
        try:
            body = response.json()
        except ValueError:
            raise ProviderUnavailable(
                SERVICE, f"{what} answered something that is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise ProviderUnavailable(SERVICE, f"{what} answered something that is not an object")
        return response.status_code, body

    # device flow (RFC 8628) -----------------------------------------------------------------

    async def start_device_login(self) -> DeviceCode:
        meta = await self.metadata()
        url = meta.require("device_authorization_endpoint")
        data = {"client_id": self.client_id, "scope": self.scope, "audience": self.audience}
        status, body = await self._post(url, data, "device authorization")
        if status != 200:
            raise LoginRequired(f"The provider refused the device login: {_oauth_error(body)}")
        try:
            return DeviceCode(
                user_code=str(body["user_code"]),
                verification_uri=str(body["verification_uri"]),
                verification_uri_complete=body.get("verification_uri_complete"),
                expires_in=float(body["expires_in"]),
                interval=float(body.get("interval", 5)),
                device_code=str(body["device_code"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ProviderUnavailable(
                SERVICE, "its device authorization answer is incomplete"
            ) from None

    async def finish_device_login(self, code: DeviceCode) -> TokenSet:
        """Poll until the user approves, denies, or the code expires (RFC 8628 3.4, 3.5)."""
        meta = await self.metadata()
        deadline = self._clock() + code.expires_in
        interval = max(code.interval, 1.0)
        data = {
            "grant_type": DEVICE_GRANT,
            "device_code": code.device_code,
            "client_id": self.client_id,
        }
        while True:
            await self._sleep(interval)
            if self._clock() > deadline:
                raise LoginRequired("The device code expired before it was approved; try again.")
            status, body = await self._post(meta.token_endpoint, data, "token request")
            if status == 200:
                return await self._token_set(body)
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5  # RFC 8628 3.5: every slow_down adds five seconds for good
                continue
            if error == "access_denied":
                raise LoginRequired("The login was denied on the activation page.")
            if error == "expired_token":
                raise LoginRequired("The device code expired before it was approved; try again.")
            raise LoginRequired(f"The provider refused the device login: {_oauth_error(body)}")

    async def device_login(self, on_code: Callable[[DeviceCode], Any]) -> TokenSet:
        code = await self.start_device_login()
        shown = on_code(code)
        if asyncio.iscoroutine(shown):
            await shown
        return await self.finish_device_login(code)

    # authorization code + PKCE with a loopback redirect (RFC 8252) --------------------------

    async def browser_login(
        self, open_url: Callable[[str], Any], *, wait_seconds: float = 300.0
    ) -> TokenSet:
        meta = await self.metadata()
        endpoint = meta.require("authorization_endpoint")
        if (
            meta.code_challenge_methods_supported
            and "S256" not in meta.code_challenge_methods_supported
        ):
            raise ProviderUnavailable(SERVICE, "it does not support PKCE with S256")
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        async with LoopbackListener() as listener:
            query = {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": listener.redirect_uri,
                "scope": self.scope,
                "audience": self.audience,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            sep = "&" if urlsplit(endpoint).query else "?"
            opened = open_url(f"{endpoint}{sep}{urlencode(query)}")
            if asyncio.iscoroutine(opened):
                await opened
            answer = await listener.wait(wait_seconds)
            redirect_uri = listener.redirect_uri
        if not hmac.compare_digest(answer.get("state", "").encode(), state.encode()):
            raise LoginRequired("The login answer does not match this login (state); try again.")
        if "error" in answer:
            raise LoginRequired(f"The provider refused the login: {_oauth_error(answer)}")
        code = answer.get("code")
        if not code:
            raise LoginRequired("The login answer carried no authorization code.")
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
        }
        status, body = await self._post(meta.token_endpoint, data, "code exchange")
        if status != 200:
            raise LoginRequired(f"The provider refused the code exchange: {_oauth_error(body)}")
        return await self._token_set(body, nonce=nonce)

    # refresh and revoke ---------------------------------------------------------------------

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise LoginRequired("The login has expired and cannot be renewed; log in again.")
        meta = await self.metadata()
        data = {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "client_id": self.client_id,
        }
        status, body = await self._post(meta.token_endpoint, data, "token refresh")
        if status != 200:
            raise LoginRequired(
                f"The login could not be renewed ({_oauth_error(body)}); log in again."
            )
        fresh = await self._token_set(body, previous=tokens)
        if fresh.subject != tokens.subject:
            raise LoginRequired("The renewed login belongs to someone else; log in again.")
        return fresh

    async def revoke(self, tokens: TokenSet) -> bool:
        """Revoke the refresh token (RFC 7009); True when the provider confirmed it."""
        if not tokens.refresh_token:
            return False
        meta = await self.metadata()
        url = meta.require("revocation_endpoint")
        data = {
            "token": tokens.refresh_token,
            "token_type_hint": "refresh_token",
            "client_id": self.client_id,
        }
        status, _ = await self._post(url, data, "revocation")
        return status == 200

    # the tokens -----------------------------------------------------------------------------

    async def _token_set(
        self, body: dict[str, Any], *, nonce: str | None = None, previous: TokenSet | None = None
    ) -> TokenSet:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProviderUnavailable(SERVICE, "its token answer has no access token")
        if str(body.get("token_type", "Bearer")).lower() != "bearer":
            raise ProviderUnavailable(SERVICE, "it issued a token type other than Bearer")
        try:
            claims = await self.validator.validate(access)
            id_token = body.get("id_token") or None
            id_claims: dict[str, Any] = {}
            if isinstance(id_token, str):
                id_claims = await self.validator.validate(
                    id_token, audience=self.client_id, token_types=ID_TOKEN_TYPES
                )
        except InvalidToken as exc:
            raise LoginRequired(
                f"The provider issued a token that does not validate: {exc}"
            ) from None
        if nonce is not None and not hmac.compare_digest(
            str(id_claims.get("nonce", "")).encode(), nonce.encode()
        ):
            raise LoginRequired("The ID token does not carry this login's nonce; try again.")
        if id_claims and id_claims.get("sub") != claims.get("sub"):
            raise LoginRequired("The ID token and the access token name different users.")
        email = (
            id_claims.get("email") or claims.get("email") or (previous.email if previous else "")
        )
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        return TokenSet(
            access_token=access,
            expires_at=float(claims["exp"]),
            issuer=self.issuer,
            client_id=self.client_id,
            audience=self.audience,
            subject=str(claims["sub"]),
            email=str(email or ""),
            scope=str(body.get("scope") or claims.get("scope") or ""),
            refresh_token=refresh if isinstance(refresh, str) else None,
            id_token=id_token
            if isinstance(id_token, str)
            else (previous.id_token if previous else None),
        )


def _oauth_error(body: dict[str, Any]) -> str:
    """`error: description` from an OAuth error answer, short and printable."""
    error = str(body.get("error") or "unknown_error")[:60]
    description = str(body.get("error_description") or "")[:200]
    text = f"{error}: {description}" if description else error
    return "".join(ch for ch in text if ch.isprintable())


# what the CLI calls -------------------------------------------------------------------------


def client_for(tokens: TokenSet | None = None, **options: Any) -> LoginClient:
    """A login client for the configured provider (or the one a stored login came from)."""
    if tokens is not None:
        options.setdefault("client_id", tokens.client_id)
        options.setdefault("audience", tokens.audience)
        return LoginClient(tokens.issuer, **options)
    return LoginClient(**options)


async def login_with_device(
    on_code: Callable[[DeviceCode], Any], *, store: TokenFile | None = None, **options: Any
) -> TokenSet:
    tokens = await client_for(**options).device_login(on_code)
    (store or TokenFile()).save(tokens)
    return tokens


async def login_with_browser(
    open_url: Callable[[str], Any],
    *,
    store: TokenFile | None = None,
    wait_seconds: float = 300.0,
    **options: Any,
) -> TokenSet:
    tokens = await client_for(**options).browser_login(open_url, wait_seconds=wait_seconds)
    (store or TokenFile()).save(tokens)
    return tokens


async def current_tokens(
    *, store: TokenFile | None = None, margin: float = REFRESH_MARGIN_SECONDS, **options: Any
) -> TokenSet:
    """The stored login, renewed (and saved) when it is about to expire; `LoginRequired` if none."""
    store = store or TokenFile()
    tokens = store.load()
    if tokens is None:
        raise LoginRequired("You are not logged in; run `warrant login`.")
    settings = get_settings()
    if normalize_issuer(tokens.issuer) != settings.issuer_url and "issuer" not in options:
        raise LoginRequired(
            f"The stored login is for {tokens.issuer}, not {settings.issuer_url}; log in again."
        )
    if not tokens.expired(margin=margin):
        return tokens
    fresh = await client_for(tokens, **options).refresh(tokens)
    store.save(fresh)
    return fresh


async def logout(*, store: TokenFile | None = None, **options: Any) -> LogoutResult:
    """Revoke the refresh token at the provider, then delete the token file (always)."""
    store = store or TokenFile()
    try:
        tokens = store.load()
    except LoginRequired:
        tokens = None  # unreadable or unsafe: still deleted below
    revoked, detail = False, ""
    if tokens is not None and tokens.refresh_token:
        try:
            revoked = await client_for(tokens, **options).revoke(tokens)
            if not revoked:
                detail = "the provider did not confirm the revocation"
        except (ProviderUnavailable, LoginRequired) as exc:
            detail = str(exc)
    removed = store.delete()
    return LogoutResult(removed=removed, revoked=revoked, detail=detail)
