"""authlib grants and endpoints wired to the provider's store: code + PKCE (S256 only), refresh
with rotation and reuse detection, device code (RFC 8628), client credentials, revocation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedTokenTypeError,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import (
    AuthorizationPendingError,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    ExpiredTokenError,
    SlowDownError,
)

from devstack.identity.clients import DEVICE_CODE
from devstack.identity.store import AuthorizationCode, DeviceCredential, RefreshToken

if TYPE_CHECKING:
    from devstack.identity.provider import IdentityProvider

_ANY_CLIENT_AUTH = ["client_secret_basic", "client_secret_post", "none"]
# RFC 6749 A.7: error_description is %x20-21 / %x23-5B / %x5D-7E (authlib raises otherwise).
_DESCRIPTION_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def safe_description(text: str) -> str:
    """`text` reduced to what an OAuth error description may carry (it may echo user input)."""
    return _DESCRIPTION_UNSAFE.sub("", text)[:300]


def provider_of(grant_or_endpoint: Any) -> IdentityProvider:
    return grant_or_endpoint.server.provider


class _IssuesProviderTokens:
    """Routes authlib's `generate_token` to the provider, with what the grant knows (audience,
    auth_time, nonce, refresh-token family); see `IdentityProvider.issue_tokens`."""

    request: Any
    GRANT_TYPE: str

    def _issue_context(self) -> dict[str, Any]:
        return {}

    def generate_token(
        self,
        user=None,
        scope=None,
        grant_type=None,
        expires_in=None,
        include_refresh_token=True,
    ) -> dict[str, Any]:
        return provider_of(self).issue_tokens(
            client=self.request.client,
            user=user,
            scope=scope or "",
            grant_type=grant_type or self.GRANT_TYPE,
            include_refresh_token=include_refresh_token,
            **self._issue_context(),
        )


class S256CodeChallenge(CodeChallenge):
    """PKCE for every client (OAuth 2.1), S256 only: `plain` or a missing method is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        """One wrong (or missing) verifier kills the code: an attacker holding a stolen code
        gets one guess, not as many as the code's lifetime allows."""
        try:
            super().validate_code_verifier(grant, result)
        except OAuth2Error:
            code = getattr(grant.request, "authorization_code", None)
            if code is not None:
                provider_of(grant).store.use_code(code)
            raise


def service_not_found(audience: str, status_code: int = 400) -> AccessDeniedError:
    """Auth0's answer to an unknown API audience."""
    return AccessDeniedError(
        safe_description(f"Service not found: {audience}"), status_code=status_code
    )


def validate_audience(grant, redirect_uri) -> None:
    """Auth0 answers an unknown API audience with access_denied "Service not found"."""
    audience = grant.request.payload.data.get("audience")
    if audience and audience not in provider_of(grant).audiences:
        raise service_not_found(audience)


def with_audience_check(grant) -> None:
    grant.register_hook("after_validate_authorization_request_payload", validate_audience)


class AuthorizationCodeGrant(_IssuesProviderTokens, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _ANY_CLIENT_AUTH

    def save_authorization_code(self, code: str, request) -> None:
        provider = provider_of(self)
        data = request.payload.data
        provider.store.save_code(
            code,
            client_id=request.client.get_client_id(),
            user_id=request.user.get_user_id(),
            redirect_uri=data.get("redirect_uri") or "",
            scope=request.scope or "",
            audience=data.get("audience") or provider.default_audience,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=getattr(request, "auth_time", int(provider.clock())),
            expires_at=provider.clock() + provider.lifetimes.authorization_code,
        )

    def query_authorization_code(self, code: str, client) -> AuthorizationCode | None:
        provider = provider_of(self)
        found = provider.store.find_code(code)
        if found is None:
            return None
        authorization_code, used = found
        if used:
            # RFC 6749 4.1.2: a code used twice revokes what was issued from it.
            provider.store.revoke_family(authorization_code.family)
            return None
        if authorization_code.client_id != client.get_client_id():
            return None
        if authorization_code.expires_at <= provider.clock():
            return None
        return authorization_code

    def authenticate_user(self, authorization_code: AuthorizationCode):
        provider = provider_of(self)
        # Mark the code used before any token exists: a concurrent second exchange loses.
        if not provider.store.use_code(authorization_code):
            raise InvalidGrantError("Invalid 'code' in request.")
        return provider.users.get(authorization_code.user_id)

    def delete_authorization_code(self, authorization_code) -> None:
        """Already marked used in `authenticate_user` (kept to detect reuse)."""

    def _issue_context(self) -> dict[str, Any]:
        code: AuthorizationCode = self.request.authorization_code
        return {
            "audience": code.audience,
            "auth_time": code.auth_time,
            "nonce": code.nonce,
            "family": code.family,
        }


class RefreshTokenGrant(_IssuesProviderTokens, grants.RefreshTokenGrant):
    """Rotation: every use returns a new refresh token; a used one presented again revokes the
    whole family (reuse detection, as Auth0's refresh token rotation)."""

    TOKEN_ENDPOINT_AUTH_METHODS = _ANY_CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        provider = provider_of(self)
        token = provider.store.find_refresh_token(refresh_token)
        if token is None:
            return None
        if token.status == "rotated":
            provider.store.revoke_family(token.family)
            return None
        if token.status != "active" or token.expires_at <= provider.clock():
            return None
        return token

    def authenticate_user(self, refresh_token: RefreshToken):
        provider = provider_of(self)
        if not provider.store.rotate_refresh_token(refresh_token):
            raise InvalidGrantError("Unknown or invalid refresh token.")
        return provider.users.get(refresh_token.user_id)

    def revoke_old_credential(self, refresh_token) -> None:
        """Already rotated in `authenticate_user`, before the new tokens were made."""

    def _issue_context(self) -> dict[str, Any]:
        token: RefreshToken = self.request.refresh_token
        return {
            "audience": token.audience,
            "auth_time": token.auth_time,
            "family": token.family,
            "refresh_scope": token.scope,  # a narrower request narrows the access token only
        }


class ProviderDeviceCodeGrant(_IssuesProviderTokens, DeviceCodeGrant):
    """RFC 8628 3.4/3.5: pending, slow_down (interval grows by 5 s), denied, expired, once."""

    def validate_token_request(self) -> None:
        provider = provider_of(self)
        device_code = self.request.payload.data.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code' in request.")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={self.GRANT_TYPE}'"
            )
        credential = provider.store.find_device_code(device_code)
        if credential is None or credential.client_id != client.get_client_id():
            raise InvalidGrantError("Invalid 'device_code' in request.")
        if credential.status == "used":
            raise InvalidGrantError("The 'device_code' was already used.")
        now = provider.clock()
        if credential.expires_at <= now:
            raise ExpiredTokenError()
        if credential.status == "denied":
            raise AccessDeniedError("The user denied the request.")
        if credential.status == "pending":
            too_soon = (
                credential.last_poll is not None
                and now - credential.last_poll < credential.interval
            )
            provider.store.record_poll(credential, now, slow_down=too_soon)
            if too_soon:
                raise SlowDownError()
            raise AuthorizationPendingError()
        user = provider.users.get(credential.user_id)
        if user is None:
            raise InvalidGrantError("The approving user no longer exists.")
        self.request.user = user
        self.request.client = client
        self.request.credential = credential

    def create_token_response(self):
        provider = provider_of(self)
        if not provider.store.use_device_code(self.request.credential):
            raise InvalidGrantError("The 'device_code' was already used.")
        return super().create_token_response()

    def _issue_context(self) -> dict[str, Any]:
        credential: DeviceCredential = self.request.credential
        return {"audience": credential.audience, "auth_time": credential.auth_time}


class ClientCredentialsGrant(_IssuesProviderTokens, grants.ClientCredentialsGrant):
    """Machine-to-machine tokens for the agent's own API calls (`sub` = `<client_id>@clients`)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        audience = self.request.payload.data.get("audience")
        if audience and audience not in provider_of(self).audiences:
            raise AccessDeniedError(
                safe_description(f"Service not found: {audience}"), status_code=403
            )

    def _issue_context(self) -> dict[str, Any]:
        audience = self.request.payload.data.get("audience")
        return {"audience": audience or provider_of(self).default_audience}


class ProviderDeviceAuthorizationEndpoint(DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = _ANY_CLIENT_AUTH

    def create_endpoint_response(self, request):
        provider = provider_of(self)
        self.EXPIRES_IN = int(provider.lifetimes.device_code)
        self.INTERVAL = int(provider.lifetimes.device_interval)
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE):
            raise UnauthorizedClientError("The client is not allowed to use the device flow.")
        audience = request.payload.data.get("audience")
        if audience and audience not in provider.audiences:
            raise AccessDeniedError(
                safe_description(f"Service not found: {audience}"), status_code=403
            )
        self._audience = audience or provider.default_audience
        return super().create_endpoint_response(request)

    def get_verification_uri(self) -> str:
        return provider_of(self).issuer + "activate"

    def save_device_credential(self, client_id: str, scope: str | None, data: dict) -> None:
        provider = provider_of(self)
        provider.store.save_device_code(
            data["device_code"],
            user_code=data["user_code"],
            client_id=client_id,
            scope=scope or "",
            audience=self._audience,
            expires_at=provider.clock() + data["expires_in"],
            interval=data["interval"],
        )


class RefreshTokenRevocation(RevocationEndpoint):
    """RFC 7009 for refresh tokens (JWT access tokens are short-lived and not revocable, as at
    Auth0); revoking one revokes its whole rotation family."""

    CLIENT_AUTH_METHODS = _ANY_CLIENT_AUTH

    def check_params(self, request, client) -> None:
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token' parameter.")
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            error = UnsupportedTokenTypeError()
            error.status_code = 400  # RFC 7009 2.2.1 (authlib's default is 401)
            raise error

    def query_token(self, token_string: str, token_type_hint: str | None):
        return provider_of(self).store.find_refresh_token(token_string)

    def revoke_token(self, token: RefreshToken, request) -> None:
        provider_of(self).store.revoke_family(token.family)
