"""Approvals wiring in one place: the ledger, the CIBA client and ping tokens, from settings.

Everything that needs an approvals object (the `approval` node, the ping callback, the poller,
the CLI) gets it here, so that all of them share one ledger file and one client per process.
Both hold connections bound to an event loop, so they are cached per (configuration, loop).

Ping notification tokens are per request and stored nowhere: the token for an approval is an
HMAC of its ledger id under a server key (`settings.ciba_notification_token`, else a key derived
from the client secret). The callback recomputes it from the record the `auth_req_id` names and
compares in constant time; a restarted or second server process can check it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import weakref
from typing import Any, Literal

from pydantic import SecretStr

from auth.approvals_ledger import ApprovalRecord, ApprovalsLedger
from auth.ciba import DEFAULT_INTERVAL, ApprovalRequest, CIBAClient
from auth.jwt import ID_TOKEN_TYPES, JWTValidator
from settings import Settings, get_settings

DeliveryMode = Literal["poll", "ping"]
# In ping mode the poller is only a safety net (a lost ping): it looks this rarely.
PING_FALLBACK_SECONDS = 60.0
LEDGER_FILE = "approvals.sqlite3"

_Loop = asyncio.AbstractEventLoop
_ledgers: weakref.WeakKeyDictionary[_Loop, dict[str, ApprovalsLedger]] = weakref.WeakKeyDictionary()
_clients: weakref.WeakKeyDictionary[_Loop, dict[tuple[str, ...], CIBAClient]] = (
    weakref.WeakKeyDictionary()
)


def ledger_location(settings: Settings | None = None) -> str:
    """Where the ledger lives: `approvals_db` (a path or postgresql:// URL) or the data folder.

    Blocking (it may create the data folder): call it off the event loop.
    """
    s = settings or get_settings()
    return s.approvals_db or str(s.path(LEDGER_FILE))


def _loop_cache(store: weakref.WeakKeyDictionary[_Loop, dict[Any, Any]]) -> dict[Any, Any]:
    loop = asyncio.get_running_loop()
    found = store.get(loop)
    if found is None:
        found = store[loop] = {}
    return found


def _ledger_key(s: Settings) -> str:
    return s.approvals_db or f"{s.data_dir}/{LEDGER_FILE}"


async def get_ledger(settings: Settings | None = None) -> ApprovalsLedger:
    """The process's ledger for the configured location (one per event loop).

    Opened on a worker thread: opening SQLite (and creating its folder) blocks.
    """
    s = settings or get_settings()
    key = _ledger_key(s)
    cache = _loop_cache(_ledgers)
    ledger = cache.get(key)
    if ledger is None:
        opened = await asyncio.to_thread(lambda: ApprovalsLedger(ledger_location(s)))
        ledger = cache.setdefault(key, opened)
        if ledger is not opened:  # another task opened it meanwhile
            await opened.close()
    return ledger


async def get_ciba_client(settings: Settings | None = None) -> CIBAClient:
    """The agent's CIBA client for the configured provider (one per event loop)."""
    s = settings or get_settings()
    secret = s.agent_client_secret.get_secret_value()
    key = (s.issuer_url, s.agent_client_id, hashlib.sha256(secret.encode()).hexdigest())
    cache = _loop_cache(_clients)
    client = cache.get(key)
    if client is None:
        # Built on a worker thread: creating an HTTP client loads TLS certificates (blocking).
        made = await asyncio.to_thread(
            lambda: CIBAClient(
                s.issuer_url,
                s.agent_client_id,
                secret,
                timeout=s.http_timeout_seconds,
                id_tokens=JWTValidator(
                    s.issuer_url,
                    s.agent_client_id,
                    token_types=ID_TOKEN_TYPES,
                    leeway=s.jwt_leeway_seconds,
                    jwks_min_refresh_seconds=s.jwks_min_refresh_seconds,
                    timeout=s.http_timeout_seconds,
                ),
            )
        )
        client = cache.setdefault(key, made)
        if client is not made:
            await made.aclose()
    return client


def delivery_mode(settings: Settings | None = None) -> DeliveryMode:
    """How this client learns of decisions: `ping` (a callback) or `poll` (Auth0's only mode)."""
    s = settings or get_settings()
    mode = str(s.ciba_delivery_mode or "poll").lower()
    return "ping" if mode == "ping" else "poll"


def _ping_key(settings: Settings | None = None) -> bytes:
    s = settings or get_settings()
    configured = s.ciba_notification_token
    if configured is not None:
        value = configured.get_secret_value() if isinstance(configured, SecretStr) else configured
        return str(value).encode()
    # No key configured: derive one from the client secret (never the secret itself).
    base = s.agent_client_secret.get_secret_value().encode()
    return hmac.new(base, b"warrant ciba ping notification key", hashlib.sha256).digest()


def notification_token(approval_id: str, settings: Settings | None = None) -> str:
    """The `client_notification_token` sent with the request for `approval_id`."""
    return hmac.new(_ping_key(settings), approval_id.encode(), hashlib.sha256).hexdigest()


def check_notification_token(
    approval_id: str, presented: str | None, settings: Settings | None = None
) -> bool:
    """True only for the exact token sent with that request (constant-time comparison)."""
    if not presented:
        return False
    expected = notification_token(approval_id, settings)
    return hmac.compare_digest(expected.encode(), presented.strip().encode())


def request_of(record: ApprovalRecord) -> ApprovalRequest:
    """The client's view of a recorded request, for one poll (interval and expiry as recorded)."""
    if record.auth_req_id is None:
        raise ValueError("this approval was never accepted by the provider")
    return ApprovalRequest(
        auth_req_id=record.auth_req_id,
        user_id=record.user_id,
        binding_message=record.binding_message,
        expires_at=record.expires_at if record.expires_at is not None else time.time() + 300,
        interval=record.poll_interval or DEFAULT_INTERVAL,
        not_before=record.next_poll_at or 0.0,
        started_at=record.created_at,  # reserved just before the push: no ID token is older
    )


def next_check_at(record_interval: float, now: float, settings: Settings | None = None) -> float:
    """When the poller should next wake this request: the interval, or rarely in ping mode."""
    if delivery_mode(settings) == "ping":
        return now + max(record_interval, PING_FALLBACK_SECONDS)
    return now + record_interval


async def close_all() -> None:
    """Close this loop's ledgers and clients (tests, CLI shutdown)."""
    loop = asyncio.get_running_loop()
    for ledger in (_ledgers.pop(loop, None) or {}).values():
        await ledger.close()
    for client in (_clients.pop(loop, None) or {}).values():
        await client.aclose()
