"""The provider's OAuth clients: the agent (confidential), the CLI (public, loopback redirects)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from settings import Settings

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"

# RFC 8252 section 7.3: a native app's loopback redirect may use any port.
_LOOPBACK_CALLBACK = re.compile(r"^http://(127\.0\.0\.1|\[::1\]):([0-9]{1,5})/callback$")


def is_loopback_callback(uri: str) -> bool:
    match = _LOOPBACK_CALLBACK.match(uri)
    return bool(match) and 0 < int(match.group(2)) < 65536


def _logout_key(url: str) -> tuple[str, str, int | None, str] | None:
    """Scheme, host, port and path of an absolute http(s) URL without credentials, else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        return None
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        return None
    default = 80 if parts.scheme == "http" else 443
    return parts.scheme, parts.hostname.lower(), port or default, parts.path or "/"


def logout_url_allowed(url: str, allowed: list[str]) -> bool:
    """`url` names one of the `allowed` URLs exactly (query strings and fragments ignored)."""
    key = _logout_key(url)
    return key is not None and any(key == _logout_key(a) for a in allowed)


@dataclass
class Client(ClientMixin):
    """A registered client. `grant_types` and `metadata` are mutable: extensions add to them
    (the Token Vault grant type for the agent, CIBA delivery settings, ...)."""

    client_id: str
    name: str
    client_secret: str | None = field(default=None, repr=False)
    redirect_uris: list[str] = field(default_factory=list)
    allow_loopback_redirects: bool = False
    grant_types: set[str] = field(default_factory=set)
    first_party: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    # Auth0's "Allowed Logout URLs": where /v2/logout may send the browser back to for this
    # client (query and fragment not compared); nothing else, loopback or not.
    allowed_logout_urls: list[str] = field(default_factory=list)

    def check_logout_url(self, url: str) -> bool:
        return logout_url_allowed(url, self.allowed_logout_urls)

    @property
    def is_public(self) -> bool:
        return self.client_secret is None

    @property
    def auth_methods(self) -> tuple[str, ...]:
        if self.is_public:
            return ("none",)
        return ("client_secret_basic", "client_secret_post")

    # authlib's ClientMixin ------------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Never guess: a request without redirect_uri only works for a single registered URI.
        if len(self.redirect_uris) == 1 and not self.allow_loopback_redirects:
            return self.redirect_uris[0]
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(dict.fromkeys((scope or "").split()))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True
        return self.allow_loopback_redirects and is_loopback_callback(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.client_secret is None:
            return False
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and AUTHORIZATION_CODE in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class ClientRegistry:
    """The clients the provider knows, by `client_id`."""

    def __init__(self, clients: list[Client] | None = None) -> None:
        self._clients: dict[str, Client] = {}
        for client in clients or []:
            self.add(client)

    @classmethod
    def seeded(cls, settings: Settings) -> ClientRegistry:
        agent = Client(
            client_id=settings.agent_client_id,
            name="Warrant agent",
            client_secret=settings.agent_client_secret.get_secret_value(),
            allow_loopback_redirects=True,
            grant_types={AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS},
        )
        cli = Client(
            client_id=settings.cli_client_id,
            name="Warrant CLI",
            allow_loopback_redirects=True,
            grant_types={AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE},
        )
        return cls([agent, cli])

    def add(self, client: Client) -> None:
        self._clients[client.client_id] = client

    def get(self, client_id: str | None) -> Client | None:
        return self._clients.get(client_id) if client_id else None

    def __iter__(self):
        return iter(self._clients.values())
