"""Connected Accounts on the local provider: a user links GitHub once, the provider keeps the grant.

Modelled on Auth0's My Account API: an application starts a connect request for the signed-in
user (`POST /me/v1/connected-accounts/connect`, answering `connect_uri`, `auth_session` and a
`ticket`), the user's browser opens the connect URI and consents at GitHub, GitHub calls the
provider back, the provider sends the browser to the application with a `connect_code`, and
the application completes (`POST /me/v1/connected-accounts/complete`). A browser-only variant
(`GET /connected-accounts/connect?connection=...&scopes=...` for a user signed in at the
provider) is the page that Warrant's "connect your GitHub account" interrupts link to.

The upstream grant (GitHub access and refresh tokens, scopes, expiry) stays here, in the
provider's data folder; the Token Vault grant (`token_vault.py`) hands out only access tokens,
refreshing them at GitHub when they near their end.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from settings import Settings

log = logging.getLogger(__name__)

CONNECT_TICKET_LIFETIME = 300  # Auth0's connect tickets expire after a few minutes
CONNECT_CODE_LIFETIME = 300
REFRESH_AHEAD = 300  # refresh an upstream token five minutes before GitHub stops accepting it
MY_ACCOUNT_SCOPE = "create:me:connected_accounts"
CONNECTIONS = ("github",)


class ConnectError(Exception):
    """A connect request that cannot go on; `error` is the OAuth-style code, message for people."""

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        self.error = error
        self.status = status
        super().__init__(message)


class UpstreamUnavailable(Exception):
    """GitHub could not be reached or answered nonsense while refreshing or exchanging."""


@dataclass(frozen=True)
class UpstreamGrant:
    """What GitHub granted for one user: kept only on the provider side."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scopes: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class ConnectedAccount:
    id: str
    user_id: str
    connection: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float

    def as_json(self) -> dict[str, Any]:
        """Auth0's connected-account object (My Account API)."""
        return {
            "id": self.id,
            "connection": self.connection,
            "access_type": "offline",
            "created_at": _iso(self.created_at),
            "scopes": list(self.scopes),
            "expires_at": _iso(self.expires_at),
        }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _scopes(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    text = value if isinstance(value, str) else " ".join(str(v) for v in value)
    return tuple(dict.fromkeys(s for s in text.replace(",", " ").split() if s))


class ConnectedAccountStore:
    """Connected accounts and connect sessions in SQLite (the provider's private data folder)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if fresh:
            os.chmod(path, 0o600)  # upstream refresh tokens live here
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(
                """
                PRAGMA journal_mode=WAL;
                CREATE TABLE IF NOT EXISTS accounts (
                    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, connection TEXT NOT NULL,
                    access_token TEXT NOT NULL, refresh_token TEXT, scopes TEXT NOT NULL,
                    expires_at REAL NOT NULL, created_at REAL NOT NULL,
                    UNIQUE (user_id, connection)
                );
                CREATE TABLE IF NOT EXISTS sessions (
                    auth_session TEXT PRIMARY KEY, ticket TEXT UNIQUE NOT NULL,
                    user_id TEXT NOT NULL, connection TEXT NOT NULL, scopes TEXT NOT NULL,
                    redirect_uri TEXT NOT NULL, state TEXT, code_challenge TEXT,
                    upstream_state TEXT UNIQUE, connect_code TEXT UNIQUE, grant_json TEXT,
                    expires_at REAL NOT NULL, stage TEXT NOT NULL
                );
                """
            )

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # connect sessions ---------------------------------------------------------------------

    def add_session(self, row: dict[str, Any]) -> None:
        self._run(
            "INSERT INTO sessions (auth_session, ticket, user_id, connection, scopes, "
            "redirect_uri, state, code_challenge, expires_at, stage) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'started')",
            tuple(
                row[k]
                for k in (
                    "auth_session",
                    "ticket",
                    "user_id",
                    "connection",
                    "scopes",
                    "redirect_uri",
                    "state",
                    "code_challenge",
                    "expires_at",
                )
            ),
        )

    def session_by(self, column: str, value: str) -> dict[str, Any] | None:
        if column not in {"auth_session", "ticket", "upstream_state", "connect_code"}:
            raise ValueError(column)
        with self._lock:
            cursor = self._db.execute(
                f"SELECT * FROM sessions WHERE {column} = ?",  # noqa: S608 - column allow-listed
                (value,),
            )
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
        return dict(zip(names, row, strict=True)) if row else None

    def advance(self, auth_session: str, stage_from: str, **changes: Any) -> bool:
        """Move a session from one stage to the next, once (a replayed step changes nothing)."""
        allowed = {"upstream_state", "connect_code", "grant_json", "stage", "expires_at"}
        if not set(changes) <= allowed:
            raise ValueError(sorted(set(changes) - allowed))
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE sessions SET {sets} WHERE auth_session = ? AND stage = ?",  # noqa: S608
                (*changes.values(), auth_session, stage_from),
            )
            return cursor.rowcount == 1

    # accounts -----------------------------------------------------------------------------

    def save_account(
        self, user_id: str, connection: str, grant: UpstreamGrant, now: float
    ) -> ConnectedAccount:
        """Store (or replace) the user's grant for `connection`."""
        account_id = "cac_" + secrets.token_urlsafe(16)
        self._run(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, connection) DO UPDATE SET id = excluded.id, "
            "access_token = excluded.access_token, refresh_token = excluded.refresh_token, "
            "scopes = excluded.scopes, expires_at = excluded.expires_at, "
            "created_at = excluded.created_at",
            (
                account_id,
                user_id,
                connection,
                grant.access_token,
                grant.refresh_token,
                " ".join(grant.scopes),
                grant.expires_at,
                now,
            ),
        )
        return ConnectedAccount(
            account_id, user_id, connection, grant.scopes, now, grant.expires_at
        )

    def grant(self, user_id: str, connection: str) -> tuple[str, UpstreamGrant] | None:
        rows = self._run(
            "SELECT id, access_token, refresh_token, scopes, expires_at FROM accounts "
            "WHERE user_id = ? AND connection = ?",
            (user_id, connection),
        )
        if not rows:
            return None
        account_id, access, refresh, scopes, expires_at = rows[0]
        return account_id, UpstreamGrant(access, refresh, _scopes(scopes), expires_at)

    def replace_grant(self, account_id: str, old_refresh: str | None, grant: UpstreamGrant) -> bool:
        """Store a refreshed grant unless another refresh got there first."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE accounts SET access_token = ?, refresh_token = ?, scopes = ?, "
                "expires_at = ? WHERE id = ? AND refresh_token IS ?",
                (
                    grant.access_token,
                    grant.refresh_token,
                    " ".join(grant.scopes),
                    grant.expires_at,
                    account_id,
                    old_refresh,
                ),
            )
            return cursor.rowcount == 1

    def accounts(self, user_id: str) -> list[ConnectedAccount]:
        rows = self._run(
            "SELECT id, user_id, connection, scopes, created_at, expires_at FROM accounts "
            "WHERE user_id = ? ORDER BY created_at",
            (user_id,),
        )
        return [ConnectedAccount(r[0], r[1], r[2], _scopes(r[3]), r[4], r[5]) for r in rows]

    def delete(
        self, user_id: str, account_id: str | None = None, connection: str | None = None
    ) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM accounts WHERE user_id = ? AND (id = ? OR connection = ?)",
                (user_id, account_id, connection),
            )
            return cursor.rowcount > 0


class GitHubUpstream:
    """The provider's side of GitHub's OAuth app: authorize URL, code and refresh exchanges."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        base_url: Callable[[], str] | None = None,
    ) -> None:
        self._client_id = settings.devstack_github_client_id
        self._client_secret = settings.devstack_github_client_secret.get_secret_value()
        self._timeout = settings.http_timeout_seconds
        self._base_url = base_url or (lambda: settings.github_api_url)
        self._http = http

    def authorize_url(
        self, redirect_uri: str, scopes: tuple[str, ...], state: str, login: str
    ) -> str:
        query = {
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
        }
        if login:
            query["login"] = login
        return f"{self._base_url().rstrip('/')}/login/oauth/authorize?{urlencode(query)}"

    async def exchange_code(self, code: str, redirect_uri: str, now: float) -> UpstreamGrant:
        return await self._token({"code": code, "redirect_uri": redirect_uri}, now)

    async def refresh(self, refresh_token: str, now: float) -> UpstreamGrant | None:
        """A fresh grant, or None when GitHub no longer honours the refresh token."""
        try:
            return await self._token(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}, now
            )
        except ConnectError:
            return None

    async def _token(self, params: dict[str, str], now: float) -> UpstreamGrant:
        url = f"{self._base_url().rstrip('/')}/login/oauth/access_token"
        data = {**params, "client_id": self._client_id, "client_secret": self._client_secret}
        headers = {"Accept": "application/json"}
        try:
            if self._http is not None:
                response = await self._http.post(url, data=data, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    response = await http.post(url, data=data, headers=headers)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamUnavailable(
                f"GitHub's token endpoint failed: {type(exc).__name__}"
            ) from None
        if response.status_code >= 500 or not isinstance(body, dict):
            raise UpstreamUnavailable(
                f"GitHub's token endpoint answered HTTP {response.status_code}"
            )
        if "error" in body:
            # GitHub answers token errors with HTTP 200 and an `error` field.
            raise ConnectError(
                str(body["error"]), str(body.get("error_description") or "GitHub refused")
            )
        access = body.get("access_token")
        expires_in = body.get("expires_in", 8 * 3600)
        if not isinstance(access, str) or not access or not isinstance(expires_in, int | float):
            raise UpstreamUnavailable("GitHub's token endpoint answered without a usable token")
        refresh = body.get("refresh_token")
        return UpstreamGrant(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) else None,
            scopes=_scopes(body.get("scope")),
            expires_at=now + float(expires_in),
        )


class ConnectedAccounts:
    """The connect flow and the upstream grants, independent of how the provider routes requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        issuer: Callable[[], str] | None = None,
        store: ConnectedAccountStore | None = None,
        upstream: GitHubUpstream | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer or (lambda: settings.issuer_url)
        self.store = store or ConnectedAccountStore(
            settings.path("devstack") / "connected_accounts.sqlite"
        )
        self.upstream = upstream or GitHubUpstream(settings)
        self._clock = clock
        self._refresh_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.refreshes = 0  # upstream refreshes made (tests count them)

    def issuer(self) -> str:
        return self._issuer().rstrip("/") + "/"

    def clock(self) -> float:
        return self._clock()

    def callback_url(self) -> str:
        return f"{self.issuer()}connected-accounts/callback"

    def done_url(self) -> str:
        return f"{self.issuer()}connected-accounts/done"

    # the connect flow ---------------------------------------------------------------------

    def start(
        self,
        user_id: str,
        connection: str,
        scopes: tuple[str, ...],
        redirect_uri: str,
        state: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
    ) -> dict[str, Any]:
        """Auth0's connect answer: where the browser goes, and the session to complete later."""
        if connection not in CONNECTIONS:
            raise ConnectError("invalid_request", f"Unknown connection: {connection}.")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ConnectError("invalid_request", "redirect_uri must be an absolute http(s) URL.")
        if code_challenge and code_challenge_method != "S256":
            raise ConnectError("invalid_request", "code_challenge_method must be S256.")
        auth_session = secrets.token_urlsafe(24)
        ticket = secrets.token_urlsafe(24)
        self.store.add_session(
            {
                "auth_session": auth_session,
                "ticket": _digest(ticket),
                "user_id": user_id,
                "connection": connection,
                "scopes": " ".join(scopes),
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge": code_challenge,
                "expires_at": self._clock() + CONNECT_TICKET_LIFETIME,
            }
        )
        return {
            "connect_uri": f"{self.issuer()}connected-accounts/connect",
            "auth_session": auth_session,
            "connect_params": {"ticket": ticket},
            "expires_in": CONNECT_TICKET_LIFETIME,
        }

    def redirect_to_github(self, ticket: str, login_hint: str = "") -> str:
        """The browser opened the connect URI: send it to GitHub's consent page (once)."""
        session = self.store.session_by("ticket", _digest(ticket))
        if session is None or session["expires_at"] <= self._clock():
            raise ConnectError("invalid_request", "This connect link is invalid or has expired.")
        upstream_state = secrets.token_urlsafe(24)
        if not self.store.advance(
            session["auth_session"], "started", upstream_state=upstream_state, stage="consent"
        ):
            raise ConnectError("invalid_request", "This connect link was already used.")
        return self.upstream.authorize_url(
            self.callback_url(), _scopes(session["scopes"]), upstream_state, login_hint
        )

    async def callback(self, upstream_state: str, code: str | None, error: str | None) -> str:
        """GitHub sent the browser back: exchange the code, then return to the application."""
        session = (
            self.store.session_by("upstream_state", upstream_state) if upstream_state else None
        )
        if session is None or session["stage"] != "consent":
            raise ConnectError("invalid_request", "Unknown or already used connect session.")
        back = session["redirect_uri"]
        state = {"state": session["state"]} if session["state"] else {}
        sep = "&" if urlsplit(back).query else "?"
        if error or not code:
            self.store.advance(session["auth_session"], "consent", stage="failed")
            query = {
                "error": "access_denied",
                "error_description": "The user did not authorize the connection.",
                **state,
            }
            return f"{back}{sep}{urlencode(query)}"
        now = self._clock()
        try:
            grant = await self.upstream.exchange_code(code, self.callback_url(), now)
        except ConnectError as exc:
            self.store.advance(session["auth_session"], "consent", stage="failed")
            query = {"error": "access_denied", "error_description": f"GitHub: {exc}", **state}
            return f"{back}{sep}{urlencode(query)}"
        connect_code = secrets.token_urlsafe(24)
        grant_json = json.dumps(
            {
                "access_token": grant.access_token,
                "refresh_token": grant.refresh_token,
                "scopes": list(grant.scopes),
                "expires_at": grant.expires_at,
            }
        )
        self.store.advance(
            session["auth_session"],
            "consent",
            connect_code=_digest(connect_code),
            grant_json=grant_json,
            stage="authorized",
            expires_at=now + CONNECT_CODE_LIFETIME,
        )
        if back == self.done_url():
            # The browser-only flow: the provider itself is the application; finish here.
            account = self.complete(
                session["user_id"], session["auth_session"], connect_code, back, None
            )
            return f"{back}?{urlencode({'connection': account.connection})}"
        return f"{back}{sep}{urlencode({'connect_code': connect_code, **state})}"

    def complete(
        self,
        user_id: str,
        auth_session: str,
        connect_code: str,
        redirect_uri: str,
        code_verifier: str | None,
    ) -> ConnectedAccount:
        """The application finishes the request: the grant becomes the user's connected account."""
        session = self.store.session_by("auth_session", auth_session)
        invalid = ConnectError("invalid_request", "The connect request is invalid or has expired.")
        if (
            session is None
            or session["stage"] != "authorized"
            or session["user_id"] != user_id
            or session["expires_at"] <= self._clock()
            or not session["connect_code"]
            or not hmac.compare_digest(session["connect_code"], _digest(connect_code))
            or session["redirect_uri"] != redirect_uri
        ):
            raise invalid
        if session["code_challenge"]:
            digest = hashlib.sha256((code_verifier or "").encode()).digest()
            computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not hmac.compare_digest(computed, session["code_challenge"]):
                raise invalid
        if not self.store.advance(auth_session, "authorized", stage="completed", grant_json=None):
            raise invalid
        raw = json.loads(session["grant_json"])
        grant = UpstreamGrant(
            raw["access_token"], raw["refresh_token"], tuple(raw["scopes"]), raw["expires_at"]
        )
        account = self.store.save_account(user_id, session["connection"], grant, self._clock())
        log.info("connected accounts: %s connected %s", user_id, session["connection"])
        return account

    # the grant's side ---------------------------------------------------------------------

    async def access_token(self, user_id: str, connection: str) -> UpstreamGrant | None:
        """The user's live upstream access token, refreshed at GitHub when near its end.

        None when the user never connected, or GitHub no longer honours the grant (the account
        is then removed: the user has to connect again).
        """
        lock = self._refresh_locks.setdefault((user_id, connection), asyncio.Lock())
        async with lock:
            found = self.store.grant(user_id, connection)
            if found is None:
                return None
            account_id, grant = found
            now = self._clock()
            if grant.expires_at - now > REFRESH_AHEAD:
                return grant
            if not grant.refresh_token:
                self.store.delete(user_id, account_id)
                return None
            self.refreshes += 1
            fresh = await self.upstream.refresh(grant.refresh_token, now)
            if fresh is None:
                log.info("connected accounts: GitHub refused %s's refresh; disconnected", user_id)
                self.store.delete(user_id, account_id)
                return None
            if fresh.refresh_token is None:
                fresh = UpstreamGrant(
                    fresh.access_token, grant.refresh_token, fresh.scopes, fresh.expires_at
                )
            self.store.replace_grant(account_id, grant.refresh_token, fresh)
            return fresh


def connected_page(connection: str) -> str:
    name = html.escape(connection)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Account connected</title>"
        f"</head><body><h1>Your {name} account is connected</h1>"
        "<p>You can close this page and return to the agent.</p></body></html>"
    )


async def connect_in_browser(
    connect_url: str,
    *,
    email: str,
    password: str,
    github_login: str,
    github_password: str,
    http: httpx.AsyncClient | None = None,
    max_hops: int = 12,
) -> str:
    """Walk a connect link as the user's browser would (tests, the demo): log in at the provider
    if asked, consent at the local GitHub, and follow the redirects home.

    Returns the final page's URL; raises `ConnectError` when a step refuses.
    """
    from urllib.parse import parse_qsl, urljoin

    own = http is None
    client = http or httpx.AsyncClient(timeout=10.0)
    try:
        response = await client.get(connect_url)
        for _ in range(max_hops):
            url = str(response.url)
            location = response.headers.get("location")
            if response.is_redirect and location:
                response = await client.get(urljoin(url, location))
                continue
            path = urlsplit(url).path
            if response.status_code == 200 and path == "/u/login":
                state = dict(parse_qsl(urlsplit(url).query)).get("state", "")
                response = await client.post(
                    urljoin(url, "/u/login"),
                    data={"state": state, "email": email, "password": password},
                )
                continue
            if response.status_code == 200 and path == "/login/oauth/authorize":
                params = dict(parse_qsl(urlsplit(url).query))
                response = await client.post(
                    urljoin(url, path),
                    data={
                        **params,
                        "login": github_login,
                        "password": github_password,
                        "decision": "authorize",
                    },
                )
                continue
            if response.status_code == 200 and path.endswith("/connected-accounts/done"):
                return url
            raise ConnectError(
                "access_denied", f"The connect flow stopped with HTTP {response.status_code}."
            )
        raise ConnectError("invalid_request", "Too many redirects while connecting.")
    finally:
        if own:
            await client.aclose()


# ------------------------------------------------------------------ the provider extension

ME_SCOPES = (
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
)


def install(provider: Any) -> ConnectedAccounts:
    """Add Connected Accounts to the devstack provider (My Account API and browser pages)."""
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

    from devstack.identity import pages

    accounts = ConnectedAccounts(
        provider.settings,
        issuer=lambda: provider.issuer,
        store=ConnectedAccountStore(provider.data_dir / "connected_accounts.sqlite"),
        clock=provider.clock,
    )
    me_audience = provider.issuer + "me/"
    provider.audiences.add(me_audience)
    provider.scopes_supported.extend(s for s in ME_SCOPES if s not in provider.scopes_supported)

    def problem(status: int, title: str, detail: str) -> JSONResponse:
        # The My Account API answers errors as RFC 9457 problem details.
        return JSONResponse(
            {
                "type": f"https://auth0.com/api-errors/{title}",
                "status": status,
                "title": title,
                "detail": detail,
            },
            status_code=status,
            media_type="application/problem+json",
        )

    def bearer_claims(request: Request, scope: str) -> dict[str, Any] | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return problem(
                401, "unauthorized", "A bearer access token for the My Account API is required."
            )
        claims = provider.verify_access_token(token.strip(), audience=me_audience)
        if claims is None:
            return problem(401, "unauthorized", "The access token is invalid or expired.")
        if scope not in str(claims.get("scope", "")).split():
            return problem(403, "insufficient_scope", f"The access token lacks the {scope} scope.")
        return claims

    async def json_body(request: Request) -> dict[str, Any] | Response:
        try:
            body = await request.json()
        except ValueError:
            return problem(400, "invalid_body", "The body must be a JSON object.")
        if not isinstance(body, dict):
            return problem(400, "invalid_body", "The body must be a JSON object.")
        return body

    async def connect(request: Request) -> Response:
        claims = bearer_claims(request, "create:me:connected_accounts")
        if isinstance(claims, Response):
            return claims
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        connection, redirect_uri = body.get("connection"), body.get("redirect_uri")
        scopes = body.get("scopes", [])
        if not isinstance(connection, str) or not isinstance(redirect_uri, str):
            return problem(400, "invalid_body", "connection and redirect_uri are required.")
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            return problem(400, "invalid_body", "scopes must be a list of strings.")
        client = provider.clients.get(claims.get("client_id") or claims.get("azp"))
        if client is None or not client.check_redirect_uri(redirect_uri):
            return problem(
                400,
                "invalid_redirect_uri",
                "redirect_uri is not an allowed callback URL of the application.",
            )
        optional = {k: body.get(k) for k in ("state", "code_challenge", "code_challenge_method")}
        if not all(v is None or isinstance(v, str) for v in optional.values()):
            return problem(400, "invalid_body", "state and code_challenge must be strings.")
        try:
            answer = accounts.start(
                str(claims["sub"]), connection, _scopes(scopes), redirect_uri, **optional
            )
        except ConnectError as exc:
            return problem(400, exc.error, str(exc))
        return JSONResponse(answer, status_code=201)

    async def complete(request: Request) -> Response:
        claims = bearer_claims(request, "create:me:connected_accounts")
        if isinstance(claims, Response):
            return claims
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        fields = [body.get(k) for k in ("auth_session", "connect_code", "redirect_uri")]
        verifier = body.get("code_verifier")
        if not all(isinstance(f, str) and f for f in fields) or not (
            verifier is None or isinstance(verifier, str)
        ):
            return problem(
                400, "invalid_body", "auth_session, connect_code and redirect_uri are required."
            )
        try:
            account = accounts.complete(str(claims["sub"]), *fields, verifier)
        except ConnectError as exc:
            return problem(400, exc.error, str(exc))
        return JSONResponse(account.as_json(), status_code=201)

    async def list_accounts(request: Request) -> Response:
        claims = bearer_claims(request, "read:me:connected_accounts")
        if isinstance(claims, Response):
            return claims
        found = accounts.store.accounts(str(claims["sub"]))
        return JSONResponse({"accounts": [a.as_json() for a in found]})

    async def delete_account(request: Request) -> Response:
        claims = bearer_claims(request, "delete:me:connected_accounts")
        if isinstance(claims, Response):
            return claims
        if not accounts.store.delete(str(claims["sub"]), request.path_params["account_id"]):
            return problem(404, "not_found", "No such connected account.")
        return Response(status_code=204)

    def error_page(message: str) -> HTMLResponse:
        return HTMLResponse(pages.error_page("Connect an account", message), status_code=400)

    async def browser_connect(request: Request) -> Response:
        ticket = request.query_params.get("ticket")
        user = provider.current_user(request)
        hint = user.nickname if user else ""
        try:
            if ticket:  # the connect_uri of the My Account API flow
                return RedirectResponse(accounts.redirect_to_github(ticket, hint), 302)
            # Warrant's interrupt link: the user connects while signed in at the provider.
            connection = request.query_params.get("connection", "")
            if user is None:
                return provider.login_redirect(request)
            started = accounts.start(
                user.sub,
                connection,
                _scopes(request.query_params.get("scopes")),
                accounts.done_url(),
            )
            target = accounts.redirect_to_github(started["connect_params"]["ticket"], hint)
        except ConnectError as exc:
            return error_page(str(exc))
        return RedirectResponse(target, 302)

    async def callback(request: Request) -> Response:
        params = request.query_params
        try:
            target = await accounts.callback(
                params.get("state", ""), params.get("code"), params.get("error")
            )
        except ConnectError as exc:
            return error_page(str(exc))
        except UpstreamUnavailable:
            return HTMLResponse(
                pages.error_page("Connect an account", "GitHub is unavailable; try again."),
                status_code=502,
            )
        return RedirectResponse(target, 302)

    async def done(request: Request) -> Response:
        connection = request.query_params.get("connection", "")
        if request.query_params.get("error") or connection not in CONNECTIONS:
            return error_page("The account was not connected.")
        return HTMLResponse(connected_page(connection))

    provider.add_route("/me/v1/connected-accounts/connect", connect, methods=["POST"])
    provider.add_route("/me/v1/connected-accounts/complete", complete, methods=["POST"])
    provider.add_route("/me/v1/connected-accounts/accounts", list_accounts, methods=["GET"])
    provider.add_route(
        "/me/v1/connected-accounts/accounts/{account_id}", delete_account, methods=["DELETE"]
    )
    provider.add_route("/connected-accounts/connect", browser_connect, methods=["GET"])
    provider.add_route("/connected-accounts/callback", callback, methods=["GET"])
    provider.add_route("/connected-accounts/done", done, methods=["GET"])
    return accounts
