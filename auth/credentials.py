"""Server-side credential store: the user's own access token, kept in this process only.

On the LangGraph server the graph never sees the request: the `authenticate` handler validates
the bearer token and puts it here, keyed by the user id (`sub`), so that a node acting for that
user can present it to the Token Vault. Tokens never leave the process: nothing here is
serialised, logged or returned to a client, and an expired token reads as absent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoredCredential:
    """One user's access token and when it stops being valid (epoch seconds)."""

    token: str = field(repr=False)
    expires_at: float


class CredentialStore:
    """Access tokens keyed by user id; thread-safe, in memory, expiring."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, StoredCredential] = {}

    def put(self, user_id: str, token: str, expires_at: float) -> None:
        """Remember `token` for `user_id` until `expires_at` (the JWT's `exp`)."""
        if not user_id or not token:
            raise ValueError("a credential needs a user id and a token")
        with self._lock:
            self._entries[user_id] = StoredCredential(token, float(expires_at))

    def get(self, user_id: str) -> str | None:
        """The user's token if one is stored and not expired; otherwise None."""
        with self._lock:
            entry = self._entries.get(user_id)
            if entry is None:
                return None
            if entry.expires_at <= self._clock():
                # An expired token is useless to the vault and only a liability in memory.
                del self._entries[user_id]
                return None
            return entry.token

    def discard(self, user_id: str) -> bool:
        """Forget the user's token (logout); True when one was stored."""
        with self._lock:
            return self._entries.pop(user_id, None) is not None

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"CredentialStore(users={len(self)})"


_store = CredentialStore()


def credential_store() -> CredentialStore:
    """The process-wide store that the server's auth handler fills."""
    return _store


def put(user_id: str, token: str, expires_at: float) -> None:
    """Remember `token` for `user_id` in the process-wide store until `expires_at`."""
    _store.put(user_id, token, expires_at)


def get(user_id: str) -> str | None:
    """The user's unexpired token from the process-wide store, or None."""
    return _store.get(user_id)


def discard(user_id: str) -> bool:
    """Forget the user's token in the process-wide store."""
    return _store.discard(user_id)
