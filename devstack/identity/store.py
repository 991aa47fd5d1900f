"""The provider's durable state in SQLite: codes, refresh tokens, device codes, browser sessions.

Every secret the provider hands out (authorization code, refresh token, device code, session
cookie) is stored only as its SHA-256 digest: a copy of the database grants nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc6749 import TokenMixin
from authlib.oauth2.rfc8628 import DeviceCredentialMixin
from authlib.oidc.core import AuthorizationCodeMixin as OIDCCodeMixin


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class AuthorizationCode(OIDCCodeMixin):
    code_hash: str = field(repr=False)
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    audience: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires_at: float
    family: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


@dataclass
class RefreshToken(TokenMixin):
    token_hash: str = field(repr=False)
    family: str
    client_id: str
    user_id: str
    scope: str
    audience: str | None
    auth_time: int
    expires_at: float
    status: str  # active, rotated (already used once), revoked

    def check_client(self, client: Any) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.status != "active"

    def get_user(self) -> str:
        return self.user_id

    def get_client(self) -> Any:
        return self.client_id


@dataclass
class DeviceCredential(DeviceCredentialMixin):
    device_hash: str = field(repr=False)
    user_code: str
    client_id: str
    scope: str
    audience: str | None
    expires_at: float
    interval: int
    last_poll: float | None
    status: str  # pending, approved, denied, used
    user_id: str | None
    auth_time: int | None

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()


@dataclass(frozen=True)
class BrowserSession:
    user_id: str
    auth_time: int
    csrf: str = field(repr=False)


_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS codes (
    code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, audience TEXT, nonce TEXT,
    code_challenge TEXT, code_challenge_method TEXT, auth_time INTEGER NOT NULL,
    expires_at REAL NOT NULL, family TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, client_id TEXT NOT NULL,
    user_id TEXT NOT NULL, scope TEXT NOT NULL, audience TEXT, auth_time INTEGER NOT NULL,
    expires_at REAL NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_family ON refresh_tokens (family);
CREATE TABLE IF NOT EXISTS device_codes (
    device_hash TEXT PRIMARY KEY, user_code TEXT UNIQUE NOT NULL, client_id TEXT NOT NULL,
    scope TEXT NOT NULL, audience TEXT, expires_at REAL NOT NULL, interval INTEGER NOT NULL,
    last_poll REAL, status TEXT NOT NULL, user_id TEXT, auth_time INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    session_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, auth_time INTEGER NOT NULL,
    csrf TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at REAL NOT NULL
);
"""


class IdentityStore:
    """One SQLite file (0600) for the provider's state; every method is one short transaction."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(str(path), os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self.clock = clock
        with self._lock:
            self._db.executescript(_SCHEMA)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, args)
            names = [d[0] for d in cursor.description] if cursor.description else []
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _change(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # authorization codes -----------------------------------------------------------------

    def save_code(self, code: str, **row: Any) -> None:
        self._change(
            "INSERT INTO codes (code_hash, client_id, user_id, redirect_uri, scope, audience, "
            "nonce, code_challenge, code_challenge_method, auth_time, expires_at, family) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                digest(code),
                row["client_id"],
                row["user_id"],
                row["redirect_uri"],
                row["scope"],
                row.get("audience"),
                row.get("nonce"),
                row.get("code_challenge"),
                row.get("code_challenge_method"),
                row["auth_time"],
                row["expires_at"],
                secrets.token_hex(16),
            ),
        )

    def find_code(self, code: str) -> tuple[AuthorizationCode, bool] | None:
        """The code and whether it was already used (None: unknown)."""
        rows = self._rows("SELECT * FROM codes WHERE code_hash = ?", (digest(code),))
        if not rows:
            return None
        row = dict(rows[0])
        used = bool(row.pop("used"))
        return AuthorizationCode(**row), used

    def use_code(self, code: AuthorizationCode) -> bool:
        """Mark the code used; False if another request used it first."""
        return (
            self._change(
                "UPDATE codes SET used = 1 WHERE code_hash = ? AND used = 0", (code.code_hash,)
            )
            == 1
        )

    # refresh tokens ----------------------------------------------------------------------

    def save_refresh_token(self, token: str, **row: Any) -> None:
        self._change(
            "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
            (
                digest(token),
                row["family"],
                row["client_id"],
                row["user_id"],
                row["scope"],
                row.get("audience"),
                row["auth_time"],
                row["expires_at"],
                self.clock(),
            ),
        )

    def find_refresh_token(self, token: str) -> RefreshToken | None:
        rows = self._rows(
            "SELECT token_hash, family, client_id, user_id, scope, audience, auth_time, "
            "expires_at, status FROM refresh_tokens WHERE token_hash = ?",
            (digest(token),),
        )
        return RefreshToken(**rows[0]) if rows else None

    def rotate_refresh_token(self, token: RefreshToken) -> bool:
        """Retire a refresh token after use; False if it was no longer active (a replay)."""
        return (
            self._change(
                "UPDATE refresh_tokens SET status = 'rotated' "
                "WHERE token_hash = ? AND status = 'active'",
                (token.token_hash,),
            )
            == 1
        )

    def revoke_family(self, family: str) -> int:
        """Revoke every refresh token descended from one login (reuse detection, logout)."""
        return self._change(
            "UPDATE refresh_tokens SET status = 'revoked' WHERE family = ? AND status != 'revoked'",
            (family,),
        )

    # device codes ------------------------------------------------------------------------

    def save_device_code(self, device_code: str, **row: Any) -> None:
        self._change(
            "INSERT INTO device_codes (device_hash, user_code, client_id, scope, audience, "
            "expires_at, interval, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
            (
                digest(device_code),
                row["user_code"],
                row["client_id"],
                row["scope"],
                row.get("audience"),
                row["expires_at"],
                row["interval"],
            ),
        )

    def _device(self, column: str, value: str) -> DeviceCredential | None:
        assert column in {"device_hash", "user_code"}
        rows = self._rows(f"SELECT * FROM device_codes WHERE {column} = ?", (value,))  # noqa: S608
        return DeviceCredential(**rows[0]) if rows else None

    def find_device_code(self, device_code: str) -> DeviceCredential | None:
        return self._device("device_hash", digest(device_code))

    def find_user_code(self, user_code: str) -> DeviceCredential | None:
        return self._device("user_code", user_code)

    def record_poll(self, credential: DeviceCredential, now: float, slow_down: bool) -> None:
        """Remember this poll; a too-early poll adds 5 s to the interval (RFC 8628 3.5)."""
        self._change(
            "UPDATE device_codes SET last_poll = ?, interval = interval + ? WHERE device_hash = ?",
            (now, 5 if slow_down else 0, credential.device_hash),
        )

    def decide_device_code(
        self, user_code: str, user_id: str, auth_time: int, approved: bool
    ) -> bool:
        """Record the user's decision once, while pending and unexpired."""
        return (
            self._change(
                "UPDATE device_codes SET status = ?, user_id = ?, auth_time = ? "
                "WHERE user_code = ? AND status = 'pending' AND expires_at > ?",
                ("approved" if approved else "denied", user_id, auth_time, user_code, self.clock()),
            )
            == 1
        )

    def use_device_code(self, credential: DeviceCredential) -> bool:
        return (
            self._change(
                "UPDATE device_codes SET status = 'used' "
                "WHERE device_hash = ? AND status = 'approved'",
                (credential.device_hash,),
            )
            == 1
        )

    # browser sessions and login transactions ---------------------------------------------

    def create_session(self, user_id: str, lifetime: float) -> tuple[str, BrowserSession]:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = BrowserSession(user_id, int(now), secrets.token_urlsafe(24))
        self._change(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (digest(token), user_id, session.auth_time, session.csrf, now + lifetime),
        )
        return token, session

    def find_session(self, token: str) -> BrowserSession | None:
        rows = self._rows(
            "SELECT user_id, auth_time, csrf FROM sessions WHERE session_hash = ? "
            "AND expires_at > ?",
            (digest(token), self.clock()),
        )
        return BrowserSession(**rows[0]) if rows else None

    def delete_session(self, token: str) -> None:
        self._change("DELETE FROM sessions WHERE session_hash = ?", (digest(token),))

    def save_transaction(self, data: dict[str, Any], lifetime: float) -> str:
        txn = secrets.token_urlsafe(24)
        self._change(
            "INSERT INTO transactions VALUES (?, ?, ?)",
            (txn, json.dumps(data), self.clock() + lifetime),
        )
        return txn

    def find_transaction(self, txn: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT data FROM transactions WHERE id = ? AND expires_at > ?", (txn, self.clock())
        )
        return json.loads(rows[0]["data"]) if rows else None
