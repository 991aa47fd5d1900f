"""OpenID Connect discovery: one provider's endpoints as a typed object, fetched once per issuer.

Every part that talks to the identity provider (JWT validation, CLI login, Token Vault, CIBA)
asks here instead of hard-coding paths, so the same code works against Auth0 and any OpenID
provider. Concurrent callers share one in-flight fetch, and a failed fetch is remembered for
`provider_failure_cache_seconds`: while the provider is slow or down, each request waits at
most one timeout (or not at all) instead of queueing behind the others' fetches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from auth.errors import ProviderUnavailable
from settings import get_settings

SERVICE = "the identity provider"
DISCOVERY_PATH = ".well-known/openid-configuration"
DEFAULT_TTL_SECONDS = 3600.0
# A discovery document is a few kilobytes; anything far larger is not one.
MAX_DOCUMENT_BYTES = 1_000_000


def normalize_issuer(issuer: str) -> str:
    """The issuer with exactly one trailing slash (Auth0 writes `iss` that way)."""
    return issuer.rstrip("/") + "/"


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a discovery document that Warrant uses; `raw` keeps the rest."""

    issuer: str
    jwks_uri: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    end_session_endpoint: str | None = None
    backchannel_authentication_endpoint: str | None = None
    code_challenge_methods_supported: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
        """Check and read a discovery document fetched for `expected_issuer`.

        The document must name the issuer it was fetched for (OpenID Connect Discovery 4.3):
        otherwise a provider could vouch for tokens from another issuer.
        """
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or normalize_issuer(issuer) != normalize_issuer(
            expected_issuer
        ):
            raise ProviderUnavailable(SERVICE, "its discovery document names another issuer")

        def url(name: str, required: bool = False) -> str | None:
            value = document.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise ProviderUnavailable(SERVICE, f"its discovery document has no valid {name}")
            return value

        methods = document.get("code_challenge_methods_supported") or ()
        if not isinstance(methods, list | tuple) or not all(isinstance(m, str) for m in methods):
            methods = ()
        return cls(
            issuer=issuer,
            jwks_uri=url("jwks_uri", required=True) or "",
            token_endpoint=url("token_endpoint", required=True) or "",
            authorization_endpoint=url("authorization_endpoint"),
            device_authorization_endpoint=url("device_authorization_endpoint"),
            userinfo_endpoint=url("userinfo_endpoint"),
            revocation_endpoint=url("revocation_endpoint"),
            end_session_endpoint=url("end_session_endpoint"),
            backchannel_authentication_endpoint=url("backchannel_authentication_endpoint"),
            code_challenge_methods_supported=tuple(methods),
            raw=dict(document),
        )

    def require(self, name: str) -> str:
        """An optional endpoint that the caller cannot do without."""
        value = getattr(self, name, None)
        if not isinstance(value, str) or not value:
            raise ProviderUnavailable(SERVICE, f"it does not offer {name}")
        return value


async def fetch_json(
    url: str,
    *,
    what: str,
    http_timeout: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """GET a JSON object, turning every kind of failure into `ProviderUnavailable`."""
    seconds = get_settings().http_timeout_seconds if http_timeout is None else http_timeout
    try:
        # httpx's timeout is per operation (connect, each read); the whole answer gets one too,
        # so a provider trickling bytes cannot hold a request for longer.
        async with asyncio.timeout(seconds):
            async with httpx.AsyncClient(timeout=seconds, transport=transport) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
    except (httpx.TimeoutException, TimeoutError):
        raise ProviderUnavailable(SERVICE, f"{what} timed out") from None
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(SERVICE, f"{what} failed: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise ProviderUnavailable(SERVICE, f"{what} answered HTTP {response.status_code}")
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise ProviderUnavailable(SERVICE, f"{what} answered an oversized document")
    try:
        body = response.json()
    except ValueError:
        raise ProviderUnavailable(SERVICE, f"{what} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise ProviderUnavailable(SERVICE, f"{what} answered something that is not a JSON object")
    return body


class DiscoveryCache:
    """Provider metadata per issuer, fetched on first use and kept for `ttl` seconds.

    A failure is kept for `failure_ttl` seconds (default: the settings'
    `provider_failure_cache_seconds`): callers in that window get the same
    `ProviderUnavailable` without a fetch.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        failure_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
    ) -> None:
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._clock = clock
        self._transport = transport
        self._timeout = timeout
        self._entries: dict[str, tuple[float, ProviderMetadata]] = {}
        self._failures: dict[str, tuple[float, ProviderUnavailable]] = {}
        # One in-flight fetch per (event loop, issuer), awaited by every concurrent caller.
        self._inflight: dict[tuple[int, str], asyncio.Task[ProviderMetadata]] = {}
        self.fetches = 0

    def _fresh(self, issuer: str) -> ProviderMetadata | None:
        entry = self._entries.get(issuer)
        if entry is not None and self._clock() - entry[0] < self._ttl:
            return entry[1]
        return None

    def _recent_failure(self, issuer: str) -> ProviderUnavailable | None:
        failure = self._failures.get(issuer)
        if failure is None:
            return None
        window = (
            get_settings().provider_failure_cache_seconds
            if self._failure_ttl is None
            else self._failure_ttl
        )
        if self._clock() - failure[0] < window:
            return failure[1]
        del self._failures[issuer]
        return None

    async def get(self, issuer: str) -> ProviderMetadata:
        """The issuer's metadata; raises `ProviderUnavailable` when it cannot be had."""
        issuer = normalize_issuer(issuer)
        found = self._fresh(issuer)
        if found is not None:
            return found
        failed = self._recent_failure(issuer)
        if failed is not None:
            raise ProviderUnavailable(failed.service, failed.reason)
        loop = asyncio.get_running_loop()
        key = (id(loop), issuer)
        task = self._inflight.get(key)
        if task is None:
            task = loop.create_task(self._fetch(issuer))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        # Shielded: one caller giving up (a client disconnecting) does not cancel the fetch
        # the others are waiting on.
        return await asyncio.shield(task)

    def _settled(self, key: tuple[int, str], task: asyncio.Task[ProviderMetadata]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter gave up first

    async def _fetch(self, issuer: str) -> ProviderMetadata:
        self.fetches += 1
        try:
            document = await fetch_json(
                issuer + DISCOVERY_PATH,
                what="discovery",
                http_timeout=self._timeout,
                transport=self._transport,
            )
            metadata = ProviderMetadata.from_document(document, issuer)
        except ProviderUnavailable as exc:
            self._failures[issuer] = (self._clock(), exc)
            raise
        self._failures.pop(issuer, None)
        self._entries[issuer] = (self._clock(), metadata)
        return metadata

    def forget(self, issuer: str | None = None) -> None:
        """Drop one issuer's cached metadata and remembered failure, or all of them."""
        if issuer is None:
            self._entries.clear()
            self._failures.clear()
        else:
            self._entries.pop(normalize_issuer(issuer), None)
            self._failures.pop(normalize_issuer(issuer), None)


_default_cache = DiscoveryCache()


async def discover(issuer: str | None = None) -> ProviderMetadata:
    """The configured (or given) issuer's metadata from the process-wide cache."""
    return await _default_cache.get(issuer or get_settings().issuer_url)


def default_cache() -> DiscoveryCache:
    """The process-wide discovery cache."""
    return _default_cache
