"""CIBA on the local provider: `/bc-authorize`, the CIBA grant, ping delivery, and the approvals a
user answers (page, JSON API, in-process handle), standing in for Auth0's push authenticator.

Wire protocol (OpenID CIBA Core 1.0 as Auth0 serves it):
- `POST /bc-authorize`, client authenticated (`client_secret_basic` / `client_secret_post`, a
  client allowed the CIBA grant): `login_hint={"format":"iss_sub","iss":...,"sub":...}`, `scope`
  with `openid`, `binding_message` (1-64 of ASCII letters, digits, spaces, `+-_.,:#`; else
  `invalid_binding_message`), optional
  `audience`, `requested_expiry` (1-300), `authorization_details` (RAR: a JSON list of objects
  with a `type`), `client_notification_token` (required for ping clients). Answer: `auth_req_id`,
  `expires_in`, `interval`. Errors: `invalid_request`, `invalid_scope`, `unknown_user_id`,
  `invalid_binding_message`,
  `invalid_authorization_details`, `unauthorized_client` (400), `access_denied` (403, unknown
  audience), `invalid_client` (401).
- `POST /oauth/token` with `grant_type=urn:openid:params:grant-type:ciba` and `auth_req_id`:
  400 `authorization_pending`; 400 `slow_down` (polled sooner than `interval` after the previous
  poll: the interval grows by 5 s, `Retry-After` says how long to wait); 400 `access_denied`;
  400 `expired_token`; 400 `invalid_grant` (unknown, another client's, or already redeemed);
  200 with the tokens (access token for the requested audience and scopes, ID token; a refresh
  token with `offline_access`) exactly once per approval.
- Delivery per client, in `client.metadata["backchannel_token_delivery_mode"]` (`poll`, the
  default as on Auth0, or `ping` with the endpoint in
  `client.metadata["backchannel_client_notification_endpoint"]`).
  Ping: when the user decides (approve or deny) or the request expires undecided, the provider
  POSTs `{"auth_req_id": ...}` with `Authorization: Bearer <client_notification_token>` to the
  endpoint, in the background, retrying briefly on network errors and 5xx. The agent client is
  configured from `settings.ciba_delivery_mode` / `settings.ciba_notification_endpoint`.

The user's side (only the user a request names may answer it):
- `GET /approvals`: the signed-in user's pending requests (binding message, client, authorization
  details, scopes and audience, time left) with Approve / Deny forms, and a short history.
- `POST /api/approvals/authenticator` (`client_id` of the CLI, its `refresh_token`): a short-lived
  authenticator credential. `GET /api/approvals` and `POST /api/approvals/{id}`
  (`{"decision": "approve"|"deny"}`) take only that credential as bearer (`warrant approvals`),
  never an access token (the agent server holds those); 404 for another user's id, 409 once
  decided or expired. Records carry a public `id`, never the `auth_req_id`.

The in-process handle (`provider.extensions["ciba"]`, a `CIBAAuthenticator`), for the demo and
tests: `pending(sub)`, `requests(sub)`, `get(ref)`, `decide(ref, sub, approve)` (`ref`: the public
id or the `auth_req_id`; raises `UnknownApproval` / `ApprovalClosed`),
`await wait_for_request(sub, timeout=...)`, `set_delivery(client_id, mode, endpoint)`,
`delivery(client_id)`, `stats(ref)` (`polls`, `pings`, `ping_attempts`, `ping_failures`),
`await flush()` (wait for pings in flight), `notify_expired()`, `view(record)` (the JSON API's
dict), and the knobs `interval`, `default_expiry`, `ping_transport` (an httpx transport for
pings), `ping_retry_delays`, `api_clients`.

Storage: `ciba.sqlite` (0600) in the provider's data folder, so pending requests survive a
restart. `auth_req_id` is kept as its SHA-256 digest; ping-mode requests also keep the
`auth_req_id` and the client's notification token, which the ping must carry.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

GRANT_TYPE = "urn:openid:params:grant-type:ciba"
MODES = ("poll", "ping")
MODE_KEY = "backchannel_token_delivery_mode"
ENDPOINT_KEY = "backchannel_client_notification_endpoint"
DEFAULT_EXPIRY = 300  # Auth0's default and maximum requested_expiry
MAX_EXPIRY = 300
DEFAULT_INTERVAL = 5  # CIBA Core 7.3's default
SLOW_DOWN_STEP = 5  # CIBA Core 11: every later poll waits at least 5 s more
# Auth0: "up to 64 characters; only alphanumeric and +-_.,:# characters" (and the plain space its
# own examples use). No other whitespace: a CR, LF or tab would let a message fake a second line.
BINDING_MESSAGE = re.compile(r"[A-Za-z0-9 +\-_.,:#]{1,64}", re.ASCII)
# RFC 6750 b64token, as CIBA Core 7.1 asks of client_notification_token (at most 1024 chars)
NOTIFICATION_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{1,1024}=*")
MAX_AUTHORIZATION_DETAILS = 10
_PUBLIC_ID_CHARS = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read aloud, typed in a CLI


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _public_id() -> str:
    return "apr_" + "".join(secrets.choice(_PUBLIC_ID_CHARS) for _ in range(10))


def _safe_url(url: str) -> str:
    """An endpoint for logs: scheme, host and path only (no query, no credentials)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class DecisionError(Exception):
    """A decision the provider refuses; `status` is the HTTP status the JSON API answers."""

    status = 400
    error = "invalid_request"


class UnknownApproval(DecisionError):
    """No such request for this user (another user's request looks exactly the same)."""

    status = 404
    error = "not_found"

    def __init__(self, message: str = "No such approval request.") -> None:
        super().__init__(message)


class ApprovalClosed(DecisionError):
    """The request was already answered, or expired: a decision can no longer change it."""

    status = 409
    error = "conflict"


@dataclass(frozen=True)
class CIBARequest:
    """One backchannel authentication request, as stored."""

    id: str  # the public id the user sees (never the auth_req_id)
    client_id: str
    user_id: str
    scope: str
    audience: str
    binding_message: str
    authorization_details: list[dict[str, Any]] | None
    delivery_mode: str
    created_at: float
    expires_at: float
    interval: int
    status: str  # pending, approved, denied (what the user decided)
    last_poll: float | None = None
    decided_at: float | None = None
    redeemed_at: float | None = None
    notified_at: float | None = None
    req_hash: str = field(default="", repr=False)
    auth_req_id: str | None = field(default=None, repr=False)  # ping mode only
    notification_token: str | None = field(default=None, repr=False)  # ping mode only

    def state(self, now: float) -> str:
        """What the user sees: pending, approved, denied, or expired (undecided in time)."""
        if self.status == "pending" and now >= self.expires_at:
            return "expired"
        return self.status


_COLUMNS = tuple(f.name for f in fields(CIBARequest))

_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS ciba_requests (
    id TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL, scope TEXT NOT NULL,
    audience TEXT NOT NULL, binding_message TEXT NOT NULL, authorization_details TEXT,
    delivery_mode TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    interval INTEGER NOT NULL, status TEXT NOT NULL, last_poll REAL, decided_at REAL,
    redeemed_at REAL, notified_at REAL, req_hash TEXT UNIQUE NOT NULL, auth_req_id TEXT,
    notification_token TEXT
);
CREATE INDEX IF NOT EXISTS ciba_requests_user ON ciba_requests (user_id, created_at);
"""


class CIBAStore:
    """The requests in SQLite; every change is one conditional statement (races lose cleanly)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # ping-mode rows hold the client's notification token: readable by the owner only
            os.close(os.open(str(path), os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _select(self, where: str, args: tuple[Any, ...] = (), tail: str = "") -> list[CIBARequest]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM ciba_requests WHERE {where} {tail}"  # noqa: S608
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for row in rows:
            values = dict(zip(_COLUMNS, row, strict=True))
            details = values["authorization_details"]
            values["authorization_details"] = json.loads(details) if details else None
            out.append(CIBARequest(**values))
        return out

    def _change(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def add(self, request: CIBARequest) -> None:
        values = [getattr(request, name) for name in _COLUMNS]
        details = request.authorization_details
        values[_COLUMNS.index("authorization_details")] = (
            json.dumps(details, separators=(",", ":")) if details is not None else None
        )
        marks = ", ".join("?" for _ in _COLUMNS)
        self._change(
            f"INSERT INTO ciba_requests ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            tuple(values),
        )

    def by_id(self, public_id: str) -> CIBARequest | None:
        found = self._select("id = ?", (public_id,))
        return found[0] if found else None

    def by_auth_req_id(self, auth_req_id: str) -> CIBARequest | None:
        found = self._select("req_hash = ?", (_digest(auth_req_id),))
        return found[0] if found else None

    def for_user(self, user_id: str, limit: int = 100) -> list[CIBARequest]:
        return self._select("user_id = ?", (user_id, limit), "ORDER BY created_at DESC LIMIT ?")

    def record_poll(self, public_id: str, now: float, interval: int) -> None:
        self._change(
            "UPDATE ciba_requests SET last_poll = ?, interval = ? WHERE id = ?",
            (now, interval, public_id),
        )

    def decide(self, public_id: str, user_id: str, approved: bool, now: float) -> bool:
        """Record the user's answer once, while pending and unexpired."""
        return (
            self._change(
                "UPDATE ciba_requests SET status = ?, decided_at = ? WHERE id = ? AND user_id = ?"
                " AND status = 'pending' AND expires_at > ?",
                ("approved" if approved else "denied", now, public_id, user_id, now),
            )
            == 1
        )

    def redeem(self, public_id: str, now: float) -> bool:
        """The approved request's tokens are handed out once: True for that one caller."""
        return (
            self._change(
                "UPDATE ciba_requests SET redeemed_at = ? WHERE id = ? AND status = 'approved'"
                " AND redeemed_at IS NULL AND expires_at > ?",
                (now, public_id, now),
            )
            == 1
        )

    def mark_notified(self, public_id: str, now: float) -> bool:
        """Claim the one ping a request gets."""
        return (
            self._change(
                "UPDATE ciba_requests SET notified_at = ? WHERE id = ? AND notified_at IS NULL",
                (now, public_id),
            )
            == 1
        )

    def ping_requests_to_expire(self, now: float) -> list[CIBARequest]:
        return self._select(
            "delivery_mode = 'ping' AND status = 'pending' AND notified_at IS NULL"
            " AND expires_at <= ?",
            (now,),
        )

    def open_ping_requests(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM ciba_requests WHERE delivery_mode = 'ping'"
                " AND status = 'pending' AND notified_at IS NULL"
            ).fetchone()
        return int(row[0])


@dataclass(frozen=True)
class Answer:
    """An HTTP status, an OAuth JSON body, and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(error: str, description: str, status: int = 400, **headers: str) -> Answer:
    return Answer(status, {"error": error, "error_description": description}, headers)


class CIBAAuthenticator:
    """The provider's CIBA logic and the user's approvals (see the module docstring)."""

    def __init__(self, provider: Any, store: CIBAStore) -> None:
        self.provider = provider
        self.store = store
        self.interval = DEFAULT_INTERVAL
        self.default_expiry = DEFAULT_EXPIRY
        # the clients whose user tokens may decide through the JSON API: the CLI's own login,
        # never a token an application (the agent) holds
        self.api_clients: set[str] = {provider.settings.cli_client_id}
        self.ping_transport: httpx.AsyncBaseTransport | None = None
        self.ping_timeout = 5.0
        self.ping_retry_delays: tuple[float, ...] = (0.25, 1.0)
        self.sweep_seconds = 1.0
        self.polls: Counter[str] = Counter()  # token-endpoint polls per request id
        self.pings: Counter[str] = Counter()  # pings the client accepted (2xx)
        self.ping_attempts: Counter[str] = Counter()
        self.ping_failures: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliveries: set[concurrent.futures.Future[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # delivery settings ------------------------------------------------------------------------

    def set_delivery(self, client_id: str, mode: str, endpoint: str | None = None) -> None:
        """Switch a client between `poll` and `ping` (with its notification endpoint)."""
        client = self.provider.clients.get(client_id)
        if client is None:
            raise ValueError(f"unknown client {client_id!r}")
        if mode not in MODES:
            raise ValueError(f"delivery mode must be one of {MODES}, not {mode!r}")
        if mode == "ping":
            parts = urlsplit(endpoint or "")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("ping delivery needs an http(s) notification endpoint")
            client.metadata[ENDPOINT_KEY] = endpoint
        elif endpoint is not None:
            client.metadata[ENDPOINT_KEY] = endpoint
        client.metadata[MODE_KEY] = mode

    def delivery(self, client_id: str) -> tuple[str, str | None]:
        """A client's `(mode, notification endpoint)`."""
        client = self.provider.clients.get(client_id)
        meta = client.metadata if client is not None else {}
        return str(meta.get(MODE_KEY, "poll")), meta.get(ENDPOINT_KEY)

    # the user's side ----------------------------------------------------------------------------

    def get(self, ref: str) -> CIBARequest | None:
        """A request by its public id or its `auth_req_id`."""
        if not ref:
            return None
        return self.store.by_id(ref) or self.store.by_auth_req_id(ref)

    def requests(self, sub: str, limit: int = 100) -> list[CIBARequest]:
        """Every request for this user, newest first."""
        return self.store.for_user(sub, limit)

    def pending(self, sub: str) -> list[CIBARequest]:
        """The user's requests still waiting for an answer, oldest first."""
        now = self.provider.clock()
        return [r for r in reversed(self.requests(sub)) if r.state(now) == "pending"]

    def decide(self, ref: str, sub: str, approve: bool) -> CIBARequest:
        """The user's answer (`ref`: public id or `auth_req_id`). Only the user the request
        names may answer; raises `UnknownApproval` (404) or `ApprovalClosed` (409)."""
        record = self.get(ref)
        if record is None or record.user_id != sub:
            raise UnknownApproval()
        now = self.provider.clock()
        state = record.state(now)
        if state != "pending":
            raise ApprovalClosed(f"This request is already {state}.")
        if not self.store.decide(record.id, sub, approve, now):
            latest = self.store.by_id(record.id)
            raise ApprovalClosed(
                f"This request is already {latest.state(now) if latest else 'gone'}."
            )
        decided = self.store.by_id(record.id)
        assert decided is not None
        log.info(
            "ciba: %s %s request %s from %s",
            sub,
            "approved" if approve else "denied",
            decided.id,
            decided.client_id,
        )
        if decided.delivery_mode == "ping":
            self._notify(decided)
        return decided

    async def wait_for_request(
        self,
        sub: str,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - a plain deadline for tests and the demo
        binding_message: str | None = None,
    ) -> CIBARequest:
        """The first pending request for `sub` (with this binding message, if given), waiting up
        to `timeout` seconds for it to arrive; `TimeoutError` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.pending(sub):
                if binding_message is None or record.binding_message == binding_message:
                    return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no pending approval request for {sub}")
            await asyncio.sleep(0.02)

    def stats(self, ref: str) -> dict[str, int]:
        """Counters for one request (tests: how often it was polled and pinged)."""
        record = self.get(ref)
        key = record.id if record else ref
        return {
            "polls": self.polls[key],
            "pings": self.pings[key],
            "ping_attempts": self.ping_attempts[key],
            "ping_failures": self.ping_failures[key],
        }

    def view(self, record: CIBARequest) -> dict[str, Any]:
        """The JSON API's view of a request (no auth_req_id, no notification token)."""
        client = self.provider.clients.get(record.client_id)
        now = self.provider.clock()
        return {
            "id": record.id,
            "binding_message": record.binding_message,
            "client_id": record.client_id,
            "client_name": client.name if client else record.client_id,
            "authorization_details": record.authorization_details or [],
            "scope": record.scope,
            "audience": record.audience,
            "status": record.state(now),
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "expires_in": max(0, int(record.expires_at - now)),
            "decided_at": record.decided_at,
        }

    # the protocol -------------------------------------------------------------------------------

    def authenticate(self, client: Any, form: dict[str, str]) -> Answer:
        """`/bc-authorize` for an authenticated client."""
        if not client.check_grant_type(GRANT_TYPE):
            return _error(
                "unauthorized_client", "The client is not allowed to use CIBA.", status=400
            )
        for unsupported in ("login_hint_token", "id_token_hint", "request", "user_code"):
            if unsupported in form:
                return _error("invalid_request", f"{unsupported} is not supported.")
        # scope
        scope_text = form.get("scope", "")
        if not scope_text.strip():
            return _error("invalid_request", "Missing required parameter: scope")
        scopes = list(dict.fromkeys(scope_text.split()))
        if "openid" not in scopes:
            return _error("invalid_scope", "The scope must include openid.")
        unknown = [s for s in scopes if s not in self.provider.scopes_supported]
        if unknown:
            return _error("invalid_scope", f"Unknown scope: {unknown[0]}")
        # the user
        user, problem = self._login_hint(form.get("login_hint"))
        if problem is not None:
            return problem
        # binding message
        message = form.get("binding_message")
        if message is None:
            return _error("invalid_request", "Missing required parameter: binding_message")
        if not BINDING_MESSAGE.fullmatch(message) or not message.strip():
            return _error(
                "invalid_binding_message",
                "binding_message must be 1 to 64 letters, digits, spaces or +-_.,:# "
                "(no tabs, line breaks or other characters)",
            )
        # audience
        audience = form.get("audience") or self.provider.default_audience
        if audience not in self.provider.audiences:
            return _error("access_denied", f"Service not found: {audience}", status=403)
        # expiry
        expiry = self.default_expiry
        raw_expiry = form.get("requested_expiry")
        if raw_expiry is not None:
            if not raw_expiry.isascii() or not raw_expiry.isdigit():
                return _error("invalid_request", "requested_expiry must be an integer.")
            expiry = int(raw_expiry)
            if not 1 <= expiry <= MAX_EXPIRY:
                return _error(
                    "invalid_request", f"requested_expiry must be between 1 and {MAX_EXPIRY}."
                )
        # rich authorization request
        details, problem = self._authorization_details(form.get("authorization_details"))
        if problem is not None:
            return problem
        # delivery
        mode, endpoint = self.delivery(client.client_id)
        token = form.get("client_notification_token")
        if mode == "ping" and endpoint:
            if not token:
                return _error(
                    "invalid_request",
                    "Missing required parameter: client_notification_token (ping mode)",
                )
            if not NOTIFICATION_TOKEN.fullmatch(token):
                return _error("invalid_request", "client_notification_token is malformed.")
        else:
            mode, token = "poll", None  # a poll client's notification token is ignored
        auth_req_id = secrets.token_urlsafe(32)
        now = self.provider.clock()
        record = CIBARequest(
            id=_public_id(),
            client_id=client.client_id,
            user_id=user.sub,
            scope=" ".join(scopes),
            audience=audience,
            binding_message=message,
            authorization_details=details,
            delivery_mode=mode,
            created_at=now,
            expires_at=now + expiry,
            interval=self.interval,
            status="pending",
            req_hash=_digest(auth_req_id),
            auth_req_id=auth_req_id if mode == "ping" else None,
            notification_token=token,
        )
        self.store.add(record)
        log.info(
            "ciba: %s asked %s to approve request %s (%s)",
            client.client_id,
            user.sub,
            record.id,
            mode,
        )
        if mode == "ping":
            self._ensure_sweeper()
        return Answer(
            200, {"auth_req_id": auth_req_id, "expires_in": expiry, "interval": self.interval}
        )

    def _login_hint(self, raw: str | None) -> tuple[Any, Answer | None]:
        if not raw:
            return None, _error("invalid_request", "Missing required parameter: login_hint")
        try:
            hint = json.loads(raw)
        except ValueError:
            hint = None
        if (
            not isinstance(hint, dict)
            or hint.get("format") != "iss_sub"
            or not isinstance(hint.get("iss"), str)
            or not isinstance(hint.get("sub"), str)
            or not hint["sub"]
        ):
            return None, _error(
                "invalid_request",
                "login_hint must be a JSON object with format iss_sub, iss (this issuer) and"
                " sub (the user id).",
            )
        if hint["iss"].rstrip("/") != self.provider.issuer.rstrip("/"):
            return None, _error("invalid_request", "login_hint names another issuer.")
        user = self.provider.users.get(hint["sub"])
        if user is None:
            return None, _error("unknown_user_id", "The user in login_hint is unknown.")
        return user, None

    @staticmethod
    def _authorization_details(
        raw: str | None,
    ) -> tuple[list[dict[str, Any]] | None, Answer | None]:
        if raw is None:
            return None, None
        try:
            details = json.loads(raw)
        except ValueError:
            details = None
        if (
            not isinstance(details, list)
            or not details
            or len(details) > MAX_AUTHORIZATION_DETAILS
            or not all(
                isinstance(d, dict) and isinstance(d.get("type"), str) and d["type"]
                for d in details
            )
        ):
            return None, _error(
                "invalid_authorization_details",
                "authorization_details must be a JSON list of objects, each with a type.",
            )
        try:
            json.dumps(details, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (`"\ud800"`) is valid JSON but no text: nothing could show it.
            return None, _error(
                "invalid_authorization_details",
                "authorization_details must be valid Unicode text (no lone surrogates).",
            )
        return details, None

    def poll(self, client: Any, form: dict[str, str]) -> Answer:
        """The CIBA grant at `/oauth/token` for an authenticated client allowed the grant."""
        auth_req_id = form.get("auth_req_id")
        if not auth_req_id:
            return _error("invalid_request", "Missing required parameter: auth_req_id")
        record = self.store.by_auth_req_id(auth_req_id)
        if record is None or record.client_id != client.client_id:
            return _error("invalid_grant", "Invalid or unknown auth_req_id.")
        self.polls[record.id] += 1
        now = self.provider.clock()
        if record.redeemed_at is not None:
            return _error("invalid_grant", "This auth_req_id was already used.")
        if now >= record.expires_at:
            return _error("expired_token", "The authentication request has expired.")
        if record.status == "denied":
            return _error("access_denied", "The user denied the request.")
        if record.status == "pending":
            if record.last_poll is not None and now - record.last_poll < record.interval:
                slower = record.interval + SLOW_DOWN_STEP
                self.store.record_poll(record.id, now, slower)
                return _error(
                    "slow_down",
                    f"Polling too fast; wait at least {slower} seconds between polls.",
                    **{"Retry-After": str(slower)},
                )
            self.store.record_poll(record.id, now, record.interval)
            return _error("authorization_pending", "The user has not answered yet.")
        user = self.provider.users.get(record.user_id)
        if user is None or not self.store.redeem(record.id, now):
            return _error("invalid_grant", "This auth_req_id was already used.")
        tokens = self.provider.issue_tokens(
            client=client,
            user=user,
            scope=record.scope,
            grant_type=GRANT_TYPE,
            audience=record.audience,
            auth_time=int(record.decided_at or now),
            extra_claims={"act": {"sub": client.client_id}},  # RFC 8693: the agent acts
        )
        log.info("ciba: issued tokens to %s for request %s", client.client_id, record.id)
        return Answer(200, tokens)

    # ping delivery ------------------------------------------------------------------------------

    def remember_loop(self) -> None:
        """Note the provider's event loop (pings run there); call from a request handler."""
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
            idle = self._sweeper is None or self._sweeper.done()
            if idle and self.store.open_ping_requests():
                self._ensure_sweeper()

    def _notify(self, record: CIBARequest) -> None:
        if not self.store.mark_notified(record.id, self.provider.clock()):
            return  # already pinged (a decision and an expiry never both ping)
        self._schedule(lambda: self._deliver(record))

    def _schedule(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        loop = self._loop if self._loop is not None and self._loop.is_running() else None
        if loop is None:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
        if loop is not None:
            future = asyncio.run_coroutine_threadsafe(make(), loop)
        else:
            # No event loop anywhere (a plain script deciding before any request was served):
            # a short-lived thread delivers the ping.
            future = concurrent.futures.Future()

            def run() -> None:
                try:
                    asyncio.run(make())
                    future.set_result(None)
                except BaseException as exc:  # reported through the future
                    future.set_exception(exc)

            threading.Thread(target=run, name="ciba-ping", daemon=True).start()
        self._deliveries.add(future)
        future.add_done_callback(self._deliveries.discard)

    async def flush(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the pings in flight are delivered (or given up)."""
        pending = [asyncio.wrap_future(f) for f in list(self._deliveries)]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _deliver(self, record: CIBARequest) -> None:
        _, endpoint = self.delivery(record.client_id)
        if not endpoint or not record.auth_req_id or not record.notification_token:
            log.warning("ciba: request %s has no notification endpoint; no ping", record.id)
            self.ping_failures[record.id] += 1
            return
        where = _safe_url(endpoint)
        headers = {
            "Authorization": f"Bearer {record.notification_token}",
            "Content-Type": "application/json",
        }
        body = json.dumps({"auth_req_id": record.auth_req_id})
        # A transport the caller set (tests, in-process apps) is theirs: never closed here.
        http = httpx.AsyncClient(transport=self.ping_transport, timeout=self.ping_timeout)
        try:
            if await self._send_ping(http, record, endpoint, body, headers):
                self.pings[record.id] += 1
                log.info("ciba: pinged %s for request %s", where, record.id)
                return
        finally:
            if self.ping_transport is None:
                await http.aclose()
        self.ping_failures[record.id] += 1

    async def _send_ping(
        self,
        http: httpx.AsyncClient,
        record: CIBARequest,
        endpoint: str,
        body: str,
        headers: dict[str, str],
    ) -> bool:
        """POST the ping, retrying briefly on network errors and 5xx; True once accepted."""
        where = _safe_url(endpoint)
        for attempt, delay in enumerate((0.0, *self.ping_retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            self.ping_attempts[record.id] += 1
            try:
                response = await http.post(endpoint, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning(
                    "ciba: ping for request %s to %s failed (%s), attempt %d",
                    record.id,
                    where,
                    type(exc).__name__,
                    attempt,
                )
                continue
            if response.is_success:
                return True
            log.warning(
                "ciba: ping for request %s to %s answered HTTP %d, attempt %d",
                record.id,
                where,
                response.status_code,
                attempt,
            )
            if response.status_code < 500:
                return False  # the client refused it: retrying would not change its mind
        return False

    def notify_expired(self) -> int:
        """Ping the clients of ping-mode requests that expired undecided; returns how many."""
        count = 0
        for record in self.store.ping_requests_to_expire(self.provider.clock()):
            if self.store.mark_notified(record.id, self.provider.clock()):
                self._schedule(lambda record=record: self._deliver(record))
                count += 1
        return count

    def _ensure_sweeper(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        # Runs while undecided ping-mode requests exist: their expiry is a result to ping too.
        while self.store.open_ping_requests():
            await asyncio.sleep(self.sweep_seconds)
            self.notify_expired()

    async def aclose(self) -> None:
        """Stop the expiry sweeper and wait for pings in flight (tests, shutdown)."""
        if self._sweeper is not None and not self._sweeper.done():
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._sweeper
        self._sweeper = None
        await self.flush()


# ------------------------------------------------------------------ the provider extension


def install(provider: Any) -> CIBAAuthenticator:
    """Add `/bc-authorize`, the CIBA grant, ping delivery and the approvals page and API."""
    from devstack.identity import ciba_pages

    settings = provider.settings
    authenticator = CIBAAuthenticator(provider, CIBAStore(provider.data_dir / "ciba.sqlite"))

    agent = provider.clients.get(settings.agent_client_id)
    if agent is not None:
        agent.grant_types.add(GRANT_TYPE)
        mode, endpoint = settings.ciba_delivery_mode, settings.ciba_notification_endpoint
        if mode == "ping" and not endpoint:
            log.warning(
                "ciba: ping delivery needs ciba_notification_endpoint; the agent client polls"
            )
            mode = "poll"
        authenticator.set_delivery(agent.client_id, mode, endpoint)

    provider.metadata.update(
        {
            "backchannel_authentication_endpoint": provider.issuer + "bc-authorize",
            "backchannel_token_delivery_modes_supported": list(MODES),
            "backchannel_user_code_parameter_supported": False,
        }
    )
    provider.add_token_grant(GRANT_TYPE, _grant_handler(provider, authenticator))
    provider.add_route(
        "/bc-authorize", _bc_authorize_endpoint(provider, authenticator), methods=["POST"]
    )
    for path, endpoint, methods in ciba_pages.routes(provider, authenticator):
        provider.add_route(path, endpoint, methods=methods)
    return authenticator


def _respond(provider: Any, answer: Answer) -> Any:
    if answer.status == 200:
        return provider.token_response(answer.body)
    return provider.oauth_error(
        answer.body["error"], answer.body["error_description"], answer.status, answer.headers
    )


def _grant_handler(provider: Any, authenticator: CIBAAuthenticator) -> Any:
    async def handler(request: Any) -> Any:
        authenticator.remember_loop()
        return _respond(provider, authenticator.poll(request.client, request.form))

    return handler


def _bc_authorize_endpoint(provider: Any, authenticator: CIBAAuthenticator) -> Any:
    from authlib.oauth2 import OAuth2Error

    from devstack.identity.provider import BadRequest

    server = provider.authorization_server

    async def bc_authorize(request: Any) -> Any:
        authenticator.remember_loop()
        try:
            oreq = await provider.oauth_request(request)
        except BadRequest as exc:
            return provider.oauth_error("invalid_request", str(exc))
        for key, values in oreq.payload.datalist.items():
            if len(values) > 1:
                return provider.oauth_error("invalid_request", f"Multiple '{key}' in request.")
        try:
            client = server.authenticate_client(oreq, ["client_secret_basic", "client_secret_post"])
        except OAuth2Error as error:
            return server.handle_error_response(oreq, error)
        except ValueError:
            return provider.oauth_error("invalid_request", "Malformed request.")
        form = {k: v for k, v in oreq.payload.data.items() if k not in ("client_secret",)}
        return _respond(provider, authenticator.authenticate(client, form))

    return bc_authorize
