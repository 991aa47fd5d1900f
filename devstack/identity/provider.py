"""The local identity provider: authlib's authorization server behind Auth0's paths, in Starlette.

`IdentityProvider` holds everything (keys, users, clients, store, the authlib server, routes);
extensions (`token_vault`, `connected_accounts`, `ciba`) receive it in `install(provider)`.
See `devstack/identity/__init__.py` for the surface extensions may rely on.
"""

from __future__ import annotations

import importlib
import json
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from devstack.identity import grants
from devstack.identity.clients import Client, ClientRegistry
from devstack.identity.grants import safe_description
from devstack.identity.keys import SigningKey
from devstack.identity.login_throttle import LoginThrottle
from devstack.identity.store import BrowserSession, IdentityStore
from devstack.identity.users import User, UserStore
from settings import Settings

log = logging.getLogger(__name__)
# authlib's grants log whole token responses at DEBUG ("Issue token %r"): never let them through,
# whatever level the application configures (no token in logs).
logging.getLogger("authlib.oauth2").setLevel(logging.INFO)

SESSION_COOKIE = "warrant_idp_session"
EXTENSIONS = ("connected_accounts", "token_vault", "ciba")
MAX_BODY_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class Lifetimes:
    """Seconds each artefact lives (Auth0's defaults where it has them)."""

    access_token: int = 3600
    id_token: int = 36000
    refresh_token: int = 30 * 24 * 3600
    authorization_code: int = 300
    device_code: int = 900
    device_interval: int = 5
    session: int = 8 * 3600
    login_transaction: int = 900


class BadRequest(Exception):
    """A request the provider cannot even parse: answered as `invalid_request`."""


class OAuthRequest(OAuth2Request):
    """authlib's request object built from an already-read Starlette request."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: dict[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = _first_values(query)
        self._form = _first_values(form)
        self.payload = _Payload(query + form)
        self._pairs = query + form
        self.auth_time: int | None = None

    def payload_pairs(self) -> list[tuple[str, str]]:
        """Every parameter in order, repeats included (to rebuild the request after login)."""
        return list(self._pairs)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = _first_values(pairs)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


class _AuthorizationServer(AuthorizationServer):
    """authlib's server, adapted to Starlette and to the provider's registries."""

    def __init__(self, provider: IdentityProvider) -> None:
        super().__init__(scopes_supported=provider.scopes_supported)
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are recorded when issued (`IdentityProvider.issue_tokens`)."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        raise TypeError("the provider passes pre-parsed OAuthRequest objects")

    def create_json_request(self, request: Any):
        raise NotImplementedError("no JSON-request endpoints are registered")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        header_map = dict(headers or [])
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=header_map)
        return Response(body or "", status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("authlib signal %s", name)


@dataclass
class TokenRequest:
    """What an async token-grant handler receives: an authenticated client and the form."""

    client: Client
    form: dict[str, str]
    headers: dict[str, str]
    oauth_request: OAuthRequest = field(repr=False)


TokenGrantHandler = Callable[[TokenRequest], Awaitable[Response]]


class IdentityProvider:
    """The provider's state and behaviour; `build_app()` makes the Starlette app."""

    def __init__(
        self,
        settings: Settings,
        *,
        issuer: str | None = None,
        data_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        lifetimes: Lifetimes | None = None,
    ) -> None:
        self.settings = settings
        self.issuer = (issuer or settings.issuer_url).rstrip("/") + "/"
        self.data_dir = data_dir or settings.path("devstack")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.lifetimes = lifetimes or Lifetimes()
        self.signing_key = SigningKey.load_or_create(self.data_dir / "signing_key.json")
        self.users = UserStore.seeded(settings)
        self.clients = ClientRegistry.seeded(settings)
        self.allowed_logout_urls: list[str] = []  # the tenant's, for a logout without client_id
        self.login_throttle = LoginThrottle(clock)
        self.store = IdentityStore(self.data_dir / "identity.sqlite", clock=clock)
        self.default_audience = settings.audience
        self.audiences: set[str] = {settings.audience}
        self.scopes_supported: list[str] = [
            "openid",
            "profile",
            "email",
            "offline_access",
            "create:gist",
        ]
        self.metadata: dict[str, Any] = {}  # discovery additions from extensions
        self.extensions: dict[str, Any] = {}  # what each extension's install() returned
        self._routes: list[Route] = []
        self._async_grants: dict[str, tuple[TokenGrantHandler, tuple[str, ...]]] = {}
        self.authorization_server = _AuthorizationServer(self)
        self._register_authlib_components()
        self._app: Starlette | None = None

    # extension surface ----------------------------------------------------------------------

    def add_route(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        methods: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        """Serve `endpoint` at `path` (call from `install`, before the app is built)."""
        if self._app is not None:
            raise RuntimeError("routes must be added before the app is built")
        self._routes.append(Route(path, endpoint, methods=methods or ["GET"], name=name))

    def add_token_grant(
        self,
        grant_type: str,
        handler: TokenGrantHandler,
        *,
        auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post"),
    ) -> None:
        """An async grant at `/oauth/token`: the provider authenticates the client (with
        `auth_methods`) and checks `client.check_grant_type(grant_type)` first."""
        self._async_grants[grant_type] = (handler, auth_methods)

    def grant_types_supported(self) -> list[str]:
        names = [g.GRANT_TYPE for g, _ in self.authorization_server._token_grants]
        return list(dict.fromkeys([*names, *self._async_grants]))

    def issue_tokens(
        self,
        *,
        client: Client,
        user: User | None,
        scope: str,
        grant_type: str,
        audience: str | None = None,
        include_refresh_token: bool = True,
        auth_time: int | None = None,
        nonce: str | None = None,
        family: str | None = None,
        refresh_scope: str | None = None,
        extra_claims: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A token response: RFC 9068 access token, ID token (user + `openid`), and a rotating
        refresh token (user + `offline_access` + a client allowed the refresh grant)."""
        now = int(self.clock())
        scopes = scope.split()
        audience = audience or self.default_audience
        aud: str | list[str] = audience
        if user is not None and "openid" in scopes:
            aud = [audience, self.issuer + "userinfo"]  # as Auth0 does
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub if user else f"{client.client_id}@clients",
            "aud": aud,
            "iat": now,
            "exp": now + self.lifetimes.access_token,
            "scope": scope,
            "client_id": client.client_id,
            "azp": client.client_id,
            "jti": uuid.uuid4().hex,
        }
        if user is not None and auth_time is not None:
            claims["auth_time"] = auth_time
        if user is None:
            claims["gty"] = "client-credentials"
        else:
            # What the post-login Action adds at Auth0: the API learns who, by email, for FGA.
            claims[self.settings.email_claim] = user.email
        claims.update(extra_claims or {})
        access_token = self.sign_jwt(claims, typ="at+jwt")
        token: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.lifetimes.access_token,
            "scope": scope,
        }
        if user is not None and "openid" in scopes:
            token["id_token"] = self.id_token(client, user, scope, access_token, nonce, auth_time)
        kept_scope = refresh_scope or scope
        if (
            user is not None
            and include_refresh_token
            and "offline_access" in kept_scope.split()
            and client.check_grant_type("refresh_token")
        ):
            refresh = secrets.token_urlsafe(48)
            self.store.save_refresh_token(
                refresh,
                family=family or secrets.token_hex(16),
                client_id=client.client_id,
                user_id=user.sub,
                scope=kept_scope,
                audience=audience,
                auth_time=auth_time or now,
                expires_at=now + self.lifetimes.refresh_token,
            )
            token["refresh_token"] = refresh
        return token

    def id_token(
        self,
        client: Client,
        user: User,
        scope: str,
        access_token: str | None = None,
        nonce: str | None = None,
        auth_time: int | None = None,
    ) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            **user.claims(scope),
            "iss": self.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + self.lifetimes.id_token,
            "auth_time": auth_time or now,
            "sid": uuid.uuid4().hex,
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = create_half_hash(access_token, "RS256").decode()
        return self.sign_jwt(claims, typ="JWT")

    def sign_jwt(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        """Sign with the provider's RS256 key (`kid` in the header)."""
        return jwt.encode({"alg": "RS256", "typ": typ}, claims, self.signing_key.key_set)

    def verify_access_token(self, token: str, audience: str | None = None) -> dict[str, Any] | None:
        """The claims of an access token this provider issued and that is still valid, else None.

        `audience`: the `aud` the caller requires (default: any of the provider's audiences or
        its userinfo audience)."""
        try:
            decoded = jwt.decode(token, self.signing_key.verify_set, algorithms=["RS256"])
        except (JoseError, ValueError, TypeError):
            return None
        if decoded.header.get("typ") != "at+jwt":
            return None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            leeway=5,
            iss={"essential": True, "value": self.issuer},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError):
            return None
        aud = claims.get("aud")
        auds = set(aud if isinstance(aud, list) else [aud])
        wanted = {audience} if audience else {*self.audiences, self.issuer + "userinfo"}
        return claims if auds & wanted else None

    def user_for_refresh_token(self, token: str, client_id: str) -> User | None:
        """The user behind an active refresh token issued to `client_id` (no rotation)."""
        found = self.store.find_refresh_token(token)
        if (
            found is None
            or found.status != "active"
            or found.client_id != client_id
            or found.expires_at <= self.clock()
        ):
            return None
        return self.users.get(found.user_id)

    def browser_session(self, request: Request) -> BrowserSession | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.store.find_session(cookie) if cookie else None

    def current_user(self, request: Request) -> User | None:
        """The user signed in to the provider in this browser (cookie session), if any."""
        session = self.browser_session(request)
        return self.users.get(session.user_id) if session else None

    def csrf_token(self, request: Request) -> str | None:
        """The signed-in session's CSRF token, for forms on provider pages."""
        session = self.browser_session(request)
        return session.csrf if session else None

    def check_csrf(self, request: Request, value: str | None) -> bool:
        expected = self.csrf_token(request)
        return bool(expected and value) and secrets.compare_digest(str(expected), str(value))

    def login_redirect(self, request: Request) -> Response:
        """Send the browser to the login page, back to this same URL afterwards."""
        return_to = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        txn = self.store.save_transaction(
            {"return_to": return_to}, self.lifetimes.login_transaction
        )
        return RedirectResponse(f"/u/login?{urlencode({'state': txn})}", status_code=302)

    @staticmethod
    def oauth_error(
        error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        body = {"error": error, "error_description": safe_description(description)}
        return JSONResponse(body, status_code=status, headers={**_NO_STORE, **(headers or {})})

    @staticmethod
    def token_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=_NO_STORE)

    async def read_params(
        self, request: Request
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Query and body parameters (form-encoded, or JSON as Auth0 also accepts)."""
        query = parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=200)
        if request.method != "POST":
            return query, []
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            raise BadRequest("Request body too large.")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest("Request body too large.")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not body:
            return query, []
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("Request body is not UTF-8.") from None
        if kind == "application/json":
            try:
                data = json.loads(text)
            except ValueError:
                raise BadRequest("Request body is not valid JSON.") from None
            if not isinstance(data, dict) or not all(
                isinstance(v, str | int | float | bool) for v in data.values()
            ):
                raise BadRequest("The JSON body must be an object of strings.")
            return query, [
                (str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()
            ]
        if kind in ("application/x-www-form-urlencoded", ""):
            try:
                return query, parse_qsl(text, keep_blank_values=True, max_num_fields=200)
            except ValueError:
                raise BadRequest("Malformed form body.") from None
        raise BadRequest(f"Unsupported content type: {kind}")

    async def oauth_request(self, request: Request) -> OAuthRequest:
        query, form = await self.read_params(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        # authlib also reads `Authorization` with its canonical casing
        if "authorization" in headers:
            headers["Authorization"] = headers["authorization"]
        return OAuthRequest(request.method, str(request.url), headers, query, form)

    # authlib wiring -------------------------------------------------------------------------

    def _register_authlib_components(self) -> None:
        server = self.authorization_server
        server.register_grant(
            grants.AuthorizationCodeGrant,
            [grants.S256CodeChallenge(required=True), grants.with_audience_check],
        )
        server.register_grant(grants.RefreshTokenGrant)
        server.register_grant(grants.ProviderDeviceCodeGrant)
        server.register_grant(grants.ClientCredentialsGrant)
        server.register_endpoint(grants.ProviderDeviceAuthorizationEndpoint)
        server.register_endpoint(grants.RefreshTokenRevocation)

    # discovery ------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        i = self.issuer
        doc: dict[str, Any] = {
            "issuer": i,
            "authorization_endpoint": i + "authorize",
            "token_endpoint": i + "oauth/token",
            "device_authorization_endpoint": i + "oauth/device/code",
            "userinfo_endpoint": i + "userinfo",
            "jwks_uri": i + ".well-known/jwks.json",
            "revocation_endpoint": i + "oauth/revoke",
            "end_session_endpoint": i + "oidc/logout",
            "scopes_supported": list(self.scopes_supported),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": self.grant_types_supported(),
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "claims_supported": [
                "aud",
                "auth_time",
                "email",
                "email_verified",
                "exp",
                "family_name",
                "given_name",
                "iat",
                "iss",
                "name",
                "nickname",
                "sub",
            ],
            "request_uri_parameter_supported": False,
            "request_parameter_supported": False,
        }
        doc.update(self.metadata)
        return doc

    # the app --------------------------------------------------------------------------------

    def load_extensions(self) -> None:
        """Install each optional extension module that exposes `install(provider)`."""
        for name in EXTENSIONS:
            module_name = f"devstack.identity.{name}"
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                continue
            install = getattr(module, "install", None)
            if install is None:
                log.debug("identity extension %s has no install(provider); skipped", name)
                continue
            self.extensions[name] = install(self)
            log.info("identity extension installed: %s", name)

    def build_app(self) -> Starlette:
        from devstack.identity import routes  # the provider's own pages and endpoints

        if self._app is not None:
            return self._app
        own = routes.provider_routes(self)
        self._app = Starlette(
            routes=[*own, *self._routes],
            exception_handlers={Exception: _server_error},
        )
        self._app.state.provider = self
        return self._app


async def _server_error(request: Request, exc: Exception) -> Response:
    # Never a stack trace to the caller; the log keeps the details (no tokens in them).
    log.error("identity provider: unexpected %s on %s", type(exc).__name__, request.url.path)
    return JSONResponse(
        {"error": "server_error", "error_description": "Unexpected error."}, status_code=500
    )


def create_identity_app(
    settings: Settings,
    *,
    issuer: str | None = None,
    data_dir: Path | None = None,
    clock: Callable[[], float] = time.time,
    lifetimes: Lifetimes | None = None,
) -> Starlette:
    """The provider as an ASGI app (`app.state.provider` is the `IdentityProvider`)."""
    provider = IdentityProvider(
        settings, issuer=issuer, data_dir=data_dir, clock=clock, lifetimes=lifetimes
    )
    provider.load_extensions()
    return provider.build_app()
