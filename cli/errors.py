"""What the CLI prints for an error: its message, plus the likely fix a new user needs."""

from __future__ import annotations

from urllib.parse import urlsplit

from auth.errors import ProviderUnavailable
from settings import get_settings

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def explain(exc: BaseException) -> str:
    """`exc`'s message; when the local identity provider is unreachable, how to start it."""
    text = str(exc)
    settings = get_settings()
    local = urlsplit(settings.issuer_url).hostname in _LOOPBACK
    provider = isinstance(exc, ProviderUnavailable) and "identity provider" in exc.service.lower()
    if provider and local:
        text += (
            f" Nothing answers at {settings.issuer_url}: is the devstack running? "
            "Start it with `warrant devstack` (or `warrant dev`) in another terminal."
        )
    return text
