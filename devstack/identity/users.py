"""The provider's users: alice and bob, seeded from settings, with hashed passwords."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from settings import Settings

_ITERATIONS = 50_000


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)


def subject_for(email: str) -> str:
    """A stable Auth0-style database-connection subject: `auth0|alice3f0c...` (same every run)."""
    local = email.split("@", 1)[0]
    return f"auth0|{local}{hashlib.sha256(email.lower().encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class User:
    """A person who can sign in; `get_user_id` is what authlib asks of a user object."""

    sub: str
    email: str
    name: str
    given_name: str
    family_name: str
    nickname: str
    email_verified: bool = True
    _salt: bytes = field(default=b"", repr=False, compare=False)
    _password_hash: bytes = field(default=b"", repr=False, compare=False)

    def get_user_id(self) -> str:
        return self.sub

    def check_password(self, password: str) -> bool:
        return hmac.compare_digest(_hash(password, self._salt), self._password_hash)

    def claims(self, scope: str | None = None) -> dict[str, Any]:
        """OIDC standard claims for the scopes granted (`profile`, `email`); `sub` always."""
        scopes = set((scope or "profile email").split())
        out: dict[str, Any] = {"sub": self.sub}
        if "profile" in scopes:
            out.update(
                name=self.name,
                given_name=self.given_name,
                family_name=self.family_name,
                nickname=self.nickname,
            )
        if "email" in scopes:
            out.update(email=self.email, email_verified=self.email_verified)
        return out


def make_user(email: str, name: str, password: str, *, email_verified: bool = True) -> User:
    """A user with a salted PBKDF2 password hash (the plain password is not kept)."""
    given, _, family = name.partition(" ")
    salt = secrets.token_bytes(16)
    return User(
        sub=subject_for(email),
        email=email,
        name=name,
        given_name=given,
        family_name=family,
        nickname=email.split("@", 1)[0],
        email_verified=email_verified,
        _salt=salt,
        _password_hash=_hash(password, salt),
    )


class UserStore:
    """Users by subject and by email (case-insensitive), as Auth0's database connection."""

    def __init__(self, users: list[User] | None = None) -> None:
        self._by_sub: dict[str, User] = {}
        self._by_email: dict[str, User] = {}
        self._dummy = make_user("nobody@invalid", "No Body", secrets.token_urlsafe(16))
        for user in users or []:
            self.add(user)

    @classmethod
    def seeded(cls, settings: Settings) -> UserStore:
        return cls(
            [
                make_user(
                    "alice@example.com", "Alice Adams", settings.alice_password.get_secret_value()
                ),
                make_user("bob@example.com", "Bob Brown", settings.bob_password.get_secret_value()),
            ]
        )

    def add(self, user: User) -> None:
        self._by_sub[user.sub] = user
        self._by_email[user.email.lower()] = user

    def get(self, sub: str | None) -> User | None:
        return self._by_sub.get(sub) if sub else None

    def by_email(self, email: str) -> User | None:
        return self._by_email.get(email.strip().lower())

    def authenticate(self, email: str, password: str) -> User | None:
        """The user whose email and password match, or None (same work either way)."""
        user = self.by_email(email)
        if user is None:
            self._dummy.check_password(password)  # no timing hint that the email is unknown
            return None
        return user if user.check_password(password) else None

    def __iter__(self):
        return iter(self._by_sub.values())
