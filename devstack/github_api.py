"""The local GitHub: the OAuth app flow with expiring user tokens, and the REST subset Warrant uses.

It stands in for github.com and api.github.com on loopback: an OAuth consent page and token
endpoint (code and refresh_token grants, 8-hour access tokens and refresh tokens, as for a GitHub
App with expiring user tokens), repository search over a generated set of repositories, gists and
the user. Errors, scope headers and rate-limit headers follow GitHub's. Tokens are stored hashed
in SQLite in the devstack data folder, as GitHub stores them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from devstack.github_search import Repository, SearchQueryError, generate_repositories, search
from settings import Settings

ACCESS_TOKEN_LIFETIME = 8 * 3600  # GitHub: expiring user access tokens last eight hours
REFRESH_TOKEN_LIFETIME = 15_897_600  # GitHub: six months
CODE_LIFETIME = 600  # GitHub: an authorization code expires after ten minutes
CALLBACK_PATH = "/connected-accounts/callback"
DOCS = "https://docs.github.com/rest"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# GitHub's scope hierarchy: a granted parent scope covers its children.
_PARENT_SCOPES = {
    "public_repo": "repo",
    "repo:status": "repo",
    "read:user": "user",
    "user:email": "user",
    "user:follow": "user",
    "read:org": "admin:org",
}
_KNOWN_SCOPES = {"repo", "public_repo", "gist", "user", "read:user", "user:email", "read:org"}
# Primary rate limits per hour or minute: (authenticated, anonymous, window seconds).
_RATE_LIMITS = {"core": (5000, 60, 3600), "search": (30, 10, 60)}


@dataclass(frozen=True)
class GitHubUser:
    id: int
    login: str
    name: str
    email: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(prefix: str, length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def _scopes(value: str | None) -> list[str]:
    """GitHub accepts space- or comma-separated scopes and answers with commas."""
    if not value:
        return []
    parts = value.replace(",", " ").split()
    return list(dict.fromkeys(p for p in parts if p))


def _covers(granted: list[str], needed: str) -> bool:
    return needed in granted or _PARENT_SCOPES.get(needed, "") in granted


class GitHubStore:
    """Users, tokens, authorization codes and gists in one SQLite file.

    The devstack's requests are tiny and few; a short lock-protected sqlite3 call per request
    keeps this stand-in simple without an async driver.
    """

    def __init__(self, path: Path, users: list[tuple[GitHubUser, str]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._passwords = {user.login: password for user, password in users}
        self.users = {user.login: user for user, _ in users}
        with self._lock:
            self._db.executescript(
                """
                PRAGMA journal_mode=WAL;
                CREATE TABLE IF NOT EXISTS tokens (
                    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, login TEXT NOT NULL,
                    client_id TEXT NOT NULL, scopes TEXT NOT NULL, expires_at REAL NOT NULL,
                    revoked INTEGER NOT NULL DEFAULT 0, grant_id TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS codes (
                    hash TEXT PRIMARY KEY, login TEXT NOT NULL, client_id TEXT NOT NULL,
                    scopes TEXT NOT NULL, redirect_uri TEXT NOT NULL, expires_at REAL NOT NULL,
                    code_challenge TEXT, used INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE IF NOT EXISTS gists (
                    id TEXT PRIMARY KEY, login TEXT NOT NULL, body TEXT NOT NULL
                );
                """
            )

    def check_password(self, login: str, password: str) -> GitHubUser | None:
        expected = self._passwords.get(login)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return self.users[login]

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def add_code(self, code: str, login: str, client_id: str, scopes: list[str], **kw: Any) -> None:
        self._run(
            "INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
            (
                _token_hash(code),
                login,
                client_id,
                ",".join(scopes),
                kw["redirect_uri"],
                kw["expires_at"],
                kw.get("code_challenge"),
            ),
        )

    def take_code(self, code: str) -> tuple[Any, ...] | None:
        """The code's row, marked used in the same step (a code works once)."""
        with self._lock:
            row = self._db.execute(
                "UPDATE codes SET used = 1 WHERE hash = ? AND used = 0 "
                "RETURNING login, client_id, scopes, redirect_uri, expires_at, code_challenge",
                (_token_hash(code),),
            ).fetchone()
        return row

    def issue(
        self, login: str, client_id: str, scopes: list[str], now: float, access_lifetime: int
    ) -> dict[str, Any]:
        """A new access token and refresh token pair: GitHub's token endpoint answer."""
        grant_id = secrets.token_hex(8)
        access = _new_token("ghu_", 36)
        refresh = _new_token("ghr_", 76)
        scope = ",".join(scopes)
        rows = [
            (_token_hash(access), "access", login, client_id, scope, now + access_lifetime),
            (
                _token_hash(refresh),
                "refresh",
                login,
                client_id,
                scope,
                now + REFRESH_TOKEN_LIFETIME,
            ),
        ]
        with self._lock:
            for row in rows:
                self._db.execute(
                    "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, 0, ?)", (*row, grant_id)
                )
        return {
            "access_token": access,
            "expires_in": access_lifetime,
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TOKEN_LIFETIME,
            "scope": scope,
            "token_type": "bearer",
        }

    def find(self, token: str, kind: str, now: float) -> tuple[str, str, list[str]] | None:
        """(login, client_id, scopes) of a live token of `kind`, or None."""
        rows = self._run(
            "SELECT login, client_id, scopes FROM tokens "
            "WHERE hash = ? AND kind = ? AND revoked = 0 AND expires_at > ?",
            (_token_hash(token), kind, now),
        )
        if not rows:
            return None
        login, client_id, scopes = rows[0]
        return login, client_id, _scopes(scopes)

    def revoke(self, token: str, client_id: str | None = None) -> bool:
        """Revoke `token` (GitHub also revokes its refresh token: the whole grant)."""
        rows = self._run(
            "SELECT grant_id, client_id FROM tokens WHERE hash = ? AND revoked = 0",
            (_token_hash(token),),
        )
        if not rows or (client_id is not None and rows[0][1] != client_id):
            return False
        self._run("UPDATE tokens SET revoked = 1 WHERE grant_id = ?", (rows[0][0],))
        return True

    def revoke_refresh_pair(self, refresh_token: str) -> None:
        """Refreshing rotates: the old refresh token and its access token stop working."""
        self.revoke(refresh_token)

    def add_gist(self, gist_id: str, login: str, body: dict[str, Any]) -> None:
        self._run("INSERT INTO gists VALUES (?, ?, ?)", (gist_id, login, json.dumps(body)))

    def gist(self, gist_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT body FROM gists WHERE id = ?", (gist_id,))
        return json.loads(rows[0][0]) if rows else None

    def gists(
        self, login: str | None, limit: int, offset: int, since: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first: `login`'s gists, or everyone's public ones when `login` is None; with
        `since` (GitHub's `YYYY-MM-DDTHH:MM:SSZ`), only those updated at or after it."""
        where, args = ("WHERE login = ?", (login,)) if login is not None else ("", ())
        rows = self._run(f"SELECT body FROM gists {where} ORDER BY rowid DESC", args)  # noqa: S608
        found = [json.loads(body) for (body,) in rows]
        if login is None:
            found = [g for g in found if g.get("public")]
        if since is not None:  # the stamps share one format, so they compare as text
            found = [g for g in found if str(g.get("updated_at", "")) >= since]
        return found[offset : offset + limit]


class RateLimiter:
    """GitHub's primary rate limits: per user (or address) and resource, in fixed windows."""

    def __init__(self, clock: Callable[[], float], search_limit: int) -> None:
        self._clock = clock
        self._limits = dict(_RATE_LIMITS)
        self._limits["search"] = (search_limit, min(10, search_limit), 60)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, subject: str, resource: str, authenticated: bool) -> tuple[bool, dict[str, str]]:
        """Count one request; (allowed, GitHub's x-ratelimit-* headers)."""
        auth_limit, anon_limit, window = self._limits[resource]
        limit = auth_limit if authenticated else anon_limit
        now = self._clock()
        with self._lock:
            reset, used = self._windows.get((subject, resource), (now + window, 0))
            if now >= reset:
                reset, used = now + window, 0
            allowed = used < limit
            if allowed:
                used += 1
            self._windows[(subject, resource)] = (reset, used)
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-reset": str(int(reset)),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": resource,
        }
        return allowed, headers

    def exhaust(self, subject: str, resource: str) -> None:
        """Use up a subject's window (a devstack admin action for tests and demos)."""
        limit, _, window = self._limits[resource]
        with self._lock:
            reset, _ = self._windows.get((subject, resource), (self._clock() + window, 0))
            self._windows[(subject, resource)] = (reset, limit)

    def reset(self, subject: str, resource: str) -> None:
        """Start a subject's window afresh (the admin undo of `exhaust`)."""
        with self._lock:
            self._windows.pop((subject, resource), None)


def _error(code: int, message: str, doc: str = DOCS, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, "documentation_url": doc, **extra}, status_code=code)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in {"bearer", "token"} and value.strip():
        return value.strip()
    return None


def create_github_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    access_token_lifetime: int | None = None,
    db_path: Path | None = None,
) -> Starlette:
    """The local GitHub as a Starlette app (`warrant devstack` serves it on its own port)."""
    password = {"alice": settings.alice_password, "bob": settings.bob_password}
    users = [
        (GitHubUser(583231, "alice", "Alice Example", "alice@example.com"), "alice"),
        (GitHubUser(583232, "bob", "Bob Example", "bob@example.com"), "bob"),
    ]
    store = GitHubStore(
        db_path or settings.path("devstack") / "github.sqlite",
        [(user, password[key].get_secret_value()) for user, key in users],
    )
    limiter = RateLimiter(clock, settings.devstack_github_search_rate_limit)
    repositories: list[Repository] = generate_repositories()
    client_id = settings.devstack_github_client_id
    client_secret = settings.devstack_github_client_secret.get_secret_value()
    lifetime = access_token_lifetime or ACCESS_TOKEN_LIFETIME

    def redirect_allowed(redirect_uri: str) -> bool:
        # GitHub: same host as the registered callback, path beneath it; loopback ports may vary.
        registered = urlsplit(settings.issuer_url.rstrip("/") + CALLBACK_PATH)
        given = urlsplit(redirect_uri)
        if given.scheme not in {"http", "https"} or given.hostname != registered.hostname:
            return False
        if given.port != registered.port and given.hostname not in _LOOPBACK:
            return False
        return given.path.startswith(registered.path)

    # ---------------------------------------------------------------- OAuth (github.com)

    def consent_page(params: dict[str, str], error: str = "") -> HTMLResponse:
        scopes = _scopes(params.get("scope")) or ["(no scope: read-only access to public data)"]
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k
            in {
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "code_challenge",
                "code_challenge_method",
            }
        )
        items = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
        notice = f'<p class="error">{html.escape(error)}</p>' if error else ""
        login = html.escape(params.get("login", ""))
        body = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Authorize application · GitHub (devstack)</title></head><body>
<h1>Authorize the Warrant identity provider</h1>{notice}
<p>It will be able to act on your GitHub account with these scopes:</p><ul>{items}</ul>
<form method="post" action="/login/oauth/authorize">{hidden}
<label>Username <input name="login" value="{login}" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button name="decision" value="authorize" type="submit">Authorize</button>
<button name="decision" value="cancel" type="submit">Cancel</button>
</form></body></html>"""
        return HTMLResponse(body, status_code=400 if error else 200)

    def authorize_problem(params: dict[str, str]) -> str | None:
        if params.get("client_id") != client_id:
            return "The client_id is not a registered OAuth application."
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not redirect_allowed(redirect_uri):
            return "The redirect_uri is not associated with this application."
        unknown = [s for s in _scopes(params.get("scope")) if s not in _KNOWN_SCOPES]
        if unknown:
            return f"Unknown scope: {', '.join(unknown)}."
        return None

    async def authorize(request: Request) -> Response:
        if request.method == "GET":
            params = dict(request.query_params)
        else:
            params = {k: str(v) for k, v in (await request.form()).items()}
        problem = authorize_problem(params)
        if problem:
            # Never redirect to an address that is not the app's: show the error instead.
            return HTMLResponse(
                f"<!doctype html><h1>Application error</h1><p>{html.escape(problem)}</p>",
                status_code=400,
            )
        if request.method == "GET":
            return consent_page(params)
        redirect_uri = params["redirect_uri"]
        state = {"state": params["state"]} if params.get("state") else {}
        if params.get("decision") != "authorize":
            query = {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "error_uri": "https://docs.github.com/apps/troubleshooting-authorization-request-errors",
                **state,
            }
            return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", status_code=302)
        user = store.check_password(params.get("login", ""), params.get("password", ""))
        if user is None:
            return consent_page(params, "Incorrect username or password.")
        code = secrets.token_hex(10)
        store.add_code(
            code,
            user.login,
            client_id,
            _scopes(params.get("scope")),
            redirect_uri=redirect_uri,
            expires_at=clock() + CODE_LIFETIME,
            code_challenge=params.get("code_challenge") or None,
        )
        return RedirectResponse(
            f"{redirect_uri}?{urlencode({'code': code, **state})}", status_code=302
        )

    def oauth_answer(request: Request, body: dict[str, Any]) -> Response:
        # GitHub answers form-encoded unless asked for JSON, and errors with HTTP 200.
        if "json" in request.headers.get("accept", ""):
            return JSONResponse(body)
        return Response(urlencode(body), media_type="application/x-www-form-urlencoded")

    def oauth_error(request: Request, error: str, description: str) -> Response:
        return oauth_answer(
            request,
            {
                "error": error,
                "error_description": description,
                "error_uri": f"https://docs.github.com/apps/troubleshooting#{error}",
            },
        )

    async def access_token(request: Request) -> Response:
        if "json" in request.headers.get("content-type", ""):
            try:
                raw = await request.json()
            except ValueError:
                return oauth_error(request, "invalid_request", "The body is not JSON.")
            params = {k: str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        else:
            params = {k: str(v) for k, v in (await request.form()).items()}
        params |= {k: v for k, v in request.query_params.items() if k not in params}
        given_secret = params.get("client_secret", "")
        if params.get("client_id") != client_id or not hmac.compare_digest(
            given_secret.encode(), client_secret.encode()
        ):
            return oauth_error(
                request,
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            )
        now = clock()
        if params.get("grant_type") == "refresh_token":
            refresh = params.get("refresh_token", "")
            found = store.find(refresh, "refresh", now)
            if found is None:
                return oauth_error(
                    request,
                    "bad_refresh_token",
                    "The refresh token passed is incorrect or expired.",
                )
            login, _, scopes = found
            store.revoke_refresh_pair(refresh)
            return oauth_answer(request, store.issue(login, client_id, scopes, now, lifetime))
        row = store.take_code(params.get("code", ""))
        bad_code = oauth_error(
            request, "bad_verification_code", "The code passed is incorrect or expired."
        )
        if row is None:
            return bad_code
        login, _, scopes, redirect_uri, expires_at, challenge = row
        if expires_at <= now:
            return bad_code
        if params.get("redirect_uri") and params["redirect_uri"] != redirect_uri:
            return oauth_error(
                request,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            )
        if challenge:
            verifier = params.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not hmac.compare_digest(computed, challenge):
                return bad_code
        return oauth_answer(request, store.issue(login, client_id, _scopes(scopes), now, lifetime))

    async def revoke_token(request: Request) -> Response:
        # GitHub: DELETE /applications/{client_id}/token, basic auth with the app's credentials.
        header = request.headers.get("authorization", "")
        try:
            scheme, _, encoded = header.partition(" ")
            user, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            scheme, user, secret = "", "", ""
        if (
            scheme.lower() != "basic"
            or user != client_id
            or request.path_params["client_id"] != client_id
            or not hmac.compare_digest(secret.encode(), client_secret.encode())
        ):
            return _error(404, "Not Found")
        try:
            body = await request.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not store.revoke(token, client_id):
            return _error(404, "Not Found")
        return Response(status_code=204)

    # ---------------------------------------------------------------- REST (api.github.com)

    def authenticate(
        request: Request, resource: str
    ) -> tuple[GitHubUser | None, list[str], dict[str, str]] | Response:
        token = _bearer(request)
        user: GitHubUser | None = None
        scopes: list[str] = []
        if token is not None:
            found = store.find(token, "access", clock())
            if found is None:
                return _error(401, "Bad credentials", status="401")
            user, scopes = store.users[found[0]], found[2]
        subject = (
            f"user:{user.id}" if user else f"ip:{request.client.host if request.client else '?'}"
        )
        allowed, headers = limiter.take(subject, resource, user is not None)
        if user is not None:
            headers["x-oauth-scopes"] = ", ".join(scopes)
        if not allowed:
            who = f"user ID {user.id}" if user else "your address"
            status = 429 if resource == "search" else 403
            response = _error(
                status,
                f"API rate limit exceeded for {who}.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
            response.headers.update(headers)
            return response
        return user, scopes, headers

    def answer(body: Any, headers: dict[str, str], status: int = 200) -> JSONResponse:
        response = JSONResponse(body, status_code=status)
        response.headers.update(headers)
        return response

    async def search_repositories(request: Request) -> Response:
        auth = authenticate(request, "search")
        if isinstance(auth, Response):
            return auth
        _, _, headers = auth
        q = request.query_params.get("q", "")
        if not q.strip():
            response = _error(
                422,
                "Validation Failed",
                "https://docs.github.com/rest/search/search#search-repositories",
                errors=[{"resource": "Search", "field": "q", "code": "missing"}],
            )
            response.headers.update(headers)
            return response
        try:
            per_page = min(100, max(1, int(request.query_params.get("per_page", "30"))))
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            return answer(
                {"message": "Invalid page or per_page", "documentation_url": DOCS}, headers, 422
            )
        sort = request.query_params.get("sort")
        order = request.query_params.get("order", "desc")
        try:
            found = search(
                repositories,
                q,
                sort if sort in {"stars", "forks", "updated", "help-wanted-issues"} else None,
                order if order in {"asc", "desc"} else "desc",
            )
        except SearchQueryError as exc:
            return answer(
                {
                    "message": "Validation Failed",
                    "errors": [
                        {"message": str(exc), "resource": "Search", "field": "q", "code": "invalid"}
                    ],
                    "documentation_url": "https://docs.github.com/rest/search/search#search-repositories",
                },
                headers,
                422,
            )
        base = str(request.base_url).rstrip("/")
        window = found[(page - 1) * per_page : page * per_page]
        return answer(
            {
                "total_count": len(found),
                "incomplete_results": False,
                "items": [repo.as_json(base, score) for repo, score in window],
            },
            headers,
        )

    def needs_scope(headers: dict[str, str], scopes: list[str], needed: str) -> Response | None:
        headers["x-accepted-oauth-scopes"] = needed
        if _covers(scopes, needed):
            return None
        # GitHub answers 404 when an OAuth token lacks the scope, so as not to reveal the resource.
        response = _error(404, "Not Found", f"{DOCS}/gists/gists#create-a-gist")
        response.headers.update(headers)
        return response

    async def create_gist(request: Request) -> Response:
        auth = authenticate(request, "core")
        if isinstance(auth, Response):
            return auth
        user, scopes, headers = auth
        if user is None:
            return answer(
                {"message": "Requires authentication", "documentation_url": DOCS}, headers, 401
            )
        refused = needs_scope(headers, scopes, "gist")
        if refused:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return answer(
                {"message": "Problems parsing JSON", "documentation_url": DOCS}, headers, 400
            )
        files = body.get("files") if isinstance(body, dict) else None
        invalid = (
            not isinstance(files, dict)
            or not files
            or any(
                not isinstance(f, dict)
                or not isinstance(f.get("content"), str)
                or not f["content"]
                or not name.strip()
                for name, f in files.items()
            )
        )
        if invalid:
            return answer(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "Gist", "code": "missing_field", "field": "files"}],
                    "documentation_url": f"{DOCS}/gists/gists#create-a-gist",
                },
                headers,
                422,
            )
        gist_id = secrets.token_hex(16)
        stamp = dt.datetime.fromtimestamp(clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        base = str(request.base_url).rstrip("/")
        gist = {
            "id": gist_id,
            "url": f"{base}/gists/{gist_id}",
            "html_url": f"https://gist.github.com/{user.login}/{gist_id}",
            "public": bool(body.get("public", False)),
            "description": str(body.get("description") or ""),
            "created_at": stamp,
            "updated_at": stamp,
            "owner": {"login": user.login, "id": user.id},
            "files": {
                name: {
                    "filename": name,
                    "type": "text/plain",
                    "language": None,
                    "raw_url": f"{base}/gists/{gist_id}/raw/{name}",
                    "size": len(f["content"].encode()),
                    "truncated": False,
                    "content": f["content"],
                }
                for name, f in files.items()
            },
        }
        store.add_gist(gist_id, user.login, gist)
        return answer(gist, headers, 201)

    async def get_gist(request: Request) -> Response:
        auth = authenticate(request, "core")
        if isinstance(auth, Response):
            return auth
        _, _, headers = auth
        gist = store.gist(request.path_params["gist_id"])
        if gist is None:
            return answer({"message": "Not Found", "documentation_url": DOCS}, headers, 404)
        return answer(gist, headers)

    async def list_gists(request: Request) -> Response:
        """`GET /gists`: the signed-in user's gists (anonymous: public ones), newest first, with
        file contents left out as GitHub does in listings."""
        auth = authenticate(request, "core")
        if isinstance(auth, Response):
            return auth
        user, _, headers = auth
        try:
            per_page = int(request.query_params.get("per_page", "30"))
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            return answer({"message": "Invalid request.", "documentation_url": DOCS}, headers, 422)
        since = request.query_params.get("since")
        if since is not None:
            try:
                dt.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                return answer(
                    {
                        "message": "Invalid request: since is not an ISO 8601 time (UTC, Z).",
                        "documentation_url": DOCS,
                    },
                    headers,
                    422,
                )
        per_page = max(1, min(per_page, 100))
        page = max(page, 1)
        listed = store.gists(
            user.login if user else None, per_page, (page - 1) * per_page, since=since
        )
        for gist in listed:
            for entry in gist.get("files", {}).values():
                entry.pop("content", None)
        return answer(listed, headers)

    async def get_user(request: Request) -> Response:
        auth = authenticate(request, "core")
        if isinstance(auth, Response):
            return auth
        user, _, headers = auth
        if user is None:
            return answer(
                {"message": "Requires authentication", "documentation_url": DOCS}, headers, 401
            )
        return answer(
            {
                "login": user.login,
                "id": user.id,
                "type": "User",
                "name": user.name,
                "email": user.email,
                "html_url": f"https://github.com/{user.login}",
            },
            headers,
        )

    async def rate_limit(request: Request) -> Response:
        auth = authenticate(request, "core")
        if isinstance(auth, Response):
            return auth
        return answer({"resources": {}}, auth[2])

    async def rate_limit_admin(request: Request) -> Response:
        # A devstack-only admin route (the app's credentials): use up or reset a user's limit.
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(404, "Not Found")
        login, action = request.path_params["login"], request.path_params["action"]
        resource = request.query_params.get("resource", "search")
        if login not in store.users or resource not in _RATE_LIMITS:
            return _error(404, "Not Found")
        subject = f"user:{store.users[login].id}"
        if action == "exhaust":
            limiter.exhaust(subject, resource)
        elif action == "reset":
            limiter.reset(subject, resource)
        else:
            return _error(404, "Not Found")
        return Response(status_code=204)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "Not Found")

    app = Starlette(
        routes=[
            Route("/login/oauth/authorize", authorize, methods=["GET", "POST"]),
            Route("/login/oauth/access_token", access_token, methods=["POST"]),
            Route("/applications/{client_id}/token", revoke_token, methods=["DELETE"]),
            Route("/search/repositories", search_repositories, methods=["GET"]),
            Route("/gists", create_gist, methods=["POST"]),
            Route("/gists", list_gists, methods=["GET"]),
            Route("/gists/{gist_id}", get_gist, methods=["GET"]),
            Route("/user", get_user, methods=["GET"]),
            Route("/rate_limit", rate_limit, methods=["GET"]),
            Route("/_devstack/rate-limit/{login}/{action}", rate_limit_admin, methods=["POST"]),
        ],
        exception_handlers={404: not_found},
    )
    app.state.store = store
    app.state.limiter = limiter
    return app
