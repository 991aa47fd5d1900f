"""Authority errors as types: nodes turn each into an interrupt or a plain message for the user.

Every message is written for a person and never contains a token, a secret or a stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A JWT (header.payload[.signature]): what access and ID tokens look like at every provider.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
PROVIDER_TEXT_CHARS = 300


def provider_text(text: object, secrets: Iterable[str | None] = ()) -> str:
    """A provider's own words (`error`, `error_description`) made safe to show: the secrets this
    request carried and anything shaped like a JWT replaced, and cut to a readable length.

    A provider may echo what it was sent; its text ends up in messages and checkpoints.
    """
    out = str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "[redacted]")
    out = _JWT.sub("[redacted]", out)
    return out if len(out) <= PROVIDER_TEXT_CHARS else out[: PROVIDER_TEXT_CHARS - 3] + "..."


class AuthError(Exception):
    """Base of every authority failure; `str(err)` is safe to show to the user."""


class ProviderUnavailable(AuthError):
    """The identity provider, FGA or GitHub refused, timed out, failed or answered nonsense."""

    def __init__(self, service: str, reason: str) -> None:
        self.service = service
        self.reason = reason
        super().__init__(f"{service} is unavailable right now ({reason}); nothing was done.")


class InvalidToken(AuthError):
    """A bearer token failed validation (signature, issuer, audience, time, algorithm, format)."""


class LoginRequired(AuthError):
    """No usable credential for the user: log in again (for example `warrant login`)."""


class ConnectionRequired(AuthError):
    """The user has not connected the account a tool needs, or granted fewer scopes than needed."""

    def __init__(
        self, connection: str, scopes: list[str], connect_url: str, missing: list[str] | None = None
    ) -> None:
        self.connection = connection
        self.scopes = list(scopes)
        self.missing_scopes = list(missing if missing is not None else scopes)
        self.connect_url = connect_url
        what = f" ({', '.join(self.missing_scopes)})" if self.missing_scopes else ""
        super().__init__(f"Connect your {connection} account{what} to continue: {connect_url}")


class ConnectionTokenRejected(AuthError):
    """A third-party API refused a Token Vault token (revoked, expired early, lacking a scope).

    Raised by a tool body; the `tools` node invalidates the vault's cached token for the user and
    connection, retries the call once with a fresh exchange, and asks the user to reconnect
    (`ConnectionRequired`) when the fresh token is refused too.
    """

    def __init__(self, connection: str, service: str, missing_scopes: tuple[str, ...] = ()) -> None:
        self.connection = connection
        self.service = service
        self.missing_scopes = tuple(missing_scopes)
        why = f"it lacks {', '.join(self.missing_scopes)}" if self.missing_scopes else "revoked"
        super().__init__(f"{service} refused the {connection} access token ({why}).")


class ApprovalPending(AuthError):
    """The user has not answered the approval request yet."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval
        super().__init__("The approval request is still waiting for your answer.")


class ApprovalDenied(AuthError):
    """The user denied the approval request on their authenticator."""

    def __init__(self, message: str = "You denied the request; nothing was done.") -> None:
        super().__init__(message)


class ApprovalExpired(AuthError):
    """The approval request expired before the user answered."""

    def __init__(self, message: str = "The approval request expired; nothing was done.") -> None:
        super().__init__(message)


class NotAuthorized(AuthError):
    """FGA said no (or could not say yes): the action or document is not available to the user."""
