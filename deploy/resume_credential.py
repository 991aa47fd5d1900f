"""The credential a server process presents to its own API to wake a thread (a resume nudge).

Under `langgraph dev` the resumer calls the server in-process; Aegra has no in-process client,
so a wake is an HTTP request to the server itself, and it must pass the server's `Auth`. The
credential names one approval, expires within a minute and is an HMAC under a key only the
server processes hold (derived, under its own label, from the same secret as ping tokens). It
lets its bearer do one thing: resume that approval's thread with a nudge (see `aegra_auth`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from pydantic import SecretStr

from settings import Settings, get_settings

SCHEME = "WarrantResume"
LIFETIME_SECONDS = 60.0


class InvalidResumeCredential(Exception):
    """A resume credential that is malformed, forged or expired."""


def _key(settings: Settings | None = None) -> bytes:
    s = settings or get_settings()
    secret = s.ciba_notification_token or s.agent_client_secret
    base = str(secret.get_secret_value() if isinstance(secret, SecretStr) else secret).encode()
    return hmac.new(base, b"warrant server resume credential", hashlib.sha256).digest()


def _mac(approval_id: str, expires: int, settings: Settings | None) -> str:
    message = f"{approval_id}.{expires}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def resume_credential(approval_id: str, settings: Settings | None = None) -> str:
    """A fresh credential for waking `approval_id`'s thread (the Authorization value)."""
    expires = int(time.time() + LIFETIME_SECONDS)
    return f"{SCHEME} {approval_id}.{expires}.{_mac(approval_id, expires, settings)}"


def approval_of(value: str, settings: Settings | None = None) -> str:
    """The approval id a valid credential names; `InvalidResumeCredential` otherwise."""
    scheme, _, token = value.strip().partition(" ")
    parts = token.strip().split(".")
    if scheme != SCHEME or len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        raise InvalidResumeCredential("malformed resume credential")
    approval_id, expires, mac = parts[0], int(parts[1]), parts[2]
    if not hmac.compare_digest(_mac(approval_id, expires, settings).encode(), mac.encode()):
        raise InvalidResumeCredential("forged resume credential")
    if expires < time.time():
        raise InvalidResumeCredential("expired resume credential")
    return approval_id
