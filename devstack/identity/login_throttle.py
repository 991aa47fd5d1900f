"""Brute-force protection for the login form, as Auth0 has: failed logins slow down, per account
and per client address, with a backoff that doubles and a cap.

Each attempt is counted as a failure *before* the password is checked (and given back when it
was right), so attempts sent in parallel cannot all slip through before the first one is
counted. A locked key is refused without checking the password at all: the answer never tells
whether that guess would have been right. Counts live in memory (a restart forgets them) and
decay: a key quiet for `forget_after` seconds starts again from zero.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """`free` failures cost nothing; the next waits `base` seconds, then twice as long, up to
    `cap`; a key quiet for `forget_after` seconds is forgotten."""

    free: int
    base: float = 1.0
    cap: float = 900.0
    forget_after: float = 3600.0

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2 ** min(failures - self.free, 60))


# An account slows down after a few consecutive failures (Auth0 blocks one after 10 from an
# address); an address after 100 failures, Auth0's suspicious-IP threshold, since many people
# (NAT, a CI machine, the demo) may share it. A right password gives the address its try back.
ACCOUNT = Backoff(free=5)
ADDRESS = Backoff(free=100)
MAX_KEYS = 100_000  # tracked keys; the first tracked go first past this


@dataclass
class _Count:
    failures: int = 0
    last: float = 0.0


class LoginThrottled(Exception):
    """Too many failed logins for this account or from this address: wait `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"Too many failed logins; try again in {retry_after} s.")


class LoginThrottle:
    """Per-account and per-address failure counts with exponential backoff."""

    def __init__(
        self,
        clock: Callable[[], float],
        account: Backoff = ACCOUNT,
        address: Backoff = ADDRESS,
    ) -> None:
        self.clock = clock
        self.rules = {"account": account, "address": address}
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], _Count] = {}

    def begin(self, account: str, address: str) -> None:
        """Start an attempt: `LoginThrottled` if either key must still wait, else count it."""
        now = self.clock()
        keys = self._keys(account, address)
        with self._lock:
            wait = 0.0
            for key in keys:
                count = self._current(key, now)
                if count is not None:
                    ready = count.last + self.rules[key[0]].delay(count.failures)
                    wait = max(wait, ready - now)
            if wait > 0:
                raise LoginThrottled(max(1, math.ceil(wait)))
            for key in keys:
                count = self._current(key, now) or self._new(key)
                count.failures += 1
                count.last = now

    def succeeded(self, account: str, address: str) -> None:
        """The password was right: the account starts over; the address gets its try back."""
        account_key, address_key = self._keys(account, address)
        with self._lock:
            self._counts.pop(account_key, None)
            count = self._counts.get(address_key)
            if count is not None:
                count.failures = max(0, count.failures - 1)

    def _keys(self, account: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("account", account.strip().lower()), ("address", address or "unknown")

    def _current(self, key: tuple[str, str], now: float) -> _Count | None:
        count = self._counts.get(key)
        if count is not None and now - count.last > self.rules[key[0]].forget_after:
            del self._counts[key]
            return None
        return count

    def _new(self, key: tuple[str, str]) -> _Count:
        if len(self._counts) >= MAX_KEYS:
            del self._counts[next(iter(self._counts))]
        count = self._counts[key] = _Count()
        return count
