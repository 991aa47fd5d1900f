"""Token Vault on the local provider: Auth0's federated-connection-access-token grant.

A confidential client presents the user's own token (an access token this provider issued for
the agent's API, or a refresh token) and a connection name; the provider answers with the
user's upstream access token for that connection, refreshed at GitHub when it nears its end.
Answers and errors are Auth0's: 200 with `access_token`, `expires_in`, `scope`,
`issued_token_type`, `token_type`; 401 `federated_connection_refresh_token_not_found` when the
user never connected (or GitHub no longer honours the grant). There is no scope parameter.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from devstack.identity.connected_accounts import (
    CONNECTIONS,
    ConnectedAccounts,
    UpstreamUnavailable,
)

GRANT_TYPE = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
REQUESTED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"
SUBJECT_TOKEN_TYPE_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPE_REFRESH = "urn:ietf:params:oauth:token-type:refresh_token"
NOT_FOUND = "federated_connection_refresh_token_not_found"

log = logging.getLogger(__name__)

# Resolves a subject token to the user it was issued to (None: invalid, expired or revoked).
SubjectResolver = Callable[[str, str, str], Awaitable[str | None]]


@dataclass(frozen=True)
class ExchangeAnswer:
    """An HTTP status and Auth0's JSON body."""

    status: int
    body: dict[str, Any]


def _error(status: int, error: str, description: str) -> ExchangeAnswer:
    return ExchangeAnswer(status, {"error": error, "error_description": description})


class FederatedConnectionExchange:
    """The grant's logic: validate the request, find the user's upstream grant, answer as Auth0.

    `resolve_subject(token, token_type, client_id)` is the provider's: it validates the user's
    token (signature, expiry, audience, revocation) and returns the user id it stands for.
    """

    def __init__(self, accounts: ConnectedAccounts, resolve_subject: SubjectResolver) -> None:
        self.accounts = accounts
        self._resolve_subject = resolve_subject
        self.exchanges: Counter[str] = Counter()  # successful exchanges per user (tests count)
        self.requests = 0

    async def exchange(self, client_id: str, form: dict[str, str]) -> ExchangeAnswer:
        """Answer one grant request from an already authenticated confidential client."""
        self.requests += 1
        subject_token = form.get("subject_token", "")
        subject_token_type = form.get("subject_token_type", "")
        connection = form.get("connection", "")
        requested = form.get("requested_token_type", "")
        if not subject_token:
            return _error(400, "invalid_request", "Missing required parameter: subject_token")
        if subject_token_type not in (SUBJECT_TOKEN_TYPE_ACCESS, SUBJECT_TOKEN_TYPE_REFRESH):
            return _error(
                400,
                "invalid_request",
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token or "
                "urn:ietf:params:oauth:token-type:refresh_token",
            )
        if requested != REQUESTED_TOKEN_TYPE:
            return _error(
                400, "invalid_request", f"requested_token_type must be {REQUESTED_TOKEN_TYPE}"
            )
        if not connection:
            return _error(400, "invalid_request", "Missing required parameter: connection")
        if connection not in CONNECTIONS:
            return _error(400, "invalid_request", f"Unknown connection: {connection}")
        user_id = await self._resolve_subject(subject_token, subject_token_type, client_id)
        if user_id is None:
            return _error(403, "invalid_grant", "Invalid subject token.")
        try:
            grant = await self.accounts.access_token(user_id, connection)
        except UpstreamUnavailable as exc:
            log.warning("token vault: upstream %s unavailable: %s", connection, exc)
            return _error(
                503, "temporarily_unavailable", f"The {connection} service is unavailable."
            )
        if grant is None:
            # Auth0: no connected account for the user and connection (login_hint, if any,
            # narrows among several accounts; the devstack keeps one per connection).
            return _error(401, NOT_FOUND, "Federated connection Refresh Token not found.")
        now = self.accounts.clock()
        self.exchanges[user_id] += 1
        log.info("token vault: issued a %s token to %s for %s", connection, client_id, user_id)
        return ExchangeAnswer(
            200,
            {
                "access_token": grant.access_token,
                "expires_in": max(1, int(grant.expires_at - now)),
                "scope": " ".join(grant.scopes),
                "issued_token_type": REQUESTED_TOKEN_TYPE,
                "token_type": "Bearer",
            },
        )


def install(provider: Any) -> FederatedConnectionExchange:
    """Add the grant to the provider's `/oauth/token` and allow the agent client to use it.

    An async grant (`provider.add_token_grant`), not an authlib grant class: the answer may need
    a refresh at GitHub over HTTP, which a synchronous authlib grant could only do by blocking
    the event loop the local GitHub may share.
    """
    accounts = provider.extensions.get("connected_accounts")
    if not isinstance(accounts, ConnectedAccounts):
        raise RuntimeError("the token_vault extension needs connected_accounts installed first")

    async def resolve_subject(token: str, token_type: str, client_id: str) -> str | None:
        if token_type == SUBJECT_TOKEN_TYPE_REFRESH:
            user = provider.user_for_refresh_token(token, client_id)
            return user.sub if user else None
        # An access token for the API the agent serves (Auth0: the Custom API Client's API).
        claims = provider.verify_access_token(token, audience=provider.default_audience)
        if claims is None or str(claims.get("sub", "")).endswith("@clients"):
            return None
        user = provider.users.get(str(claims["sub"]))
        return user.sub if user else None

    exchange = FederatedConnectionExchange(accounts, resolve_subject)

    async def handler(request: Any) -> Any:
        answer = await exchange.exchange(request.client.client_id, request.form)
        if answer.status == 200:
            return provider.token_response(answer.body)
        return provider.oauth_error(
            answer.body["error"], answer.body["error_description"], answer.status
        )

    agent = provider.clients.get(provider.settings.agent_client_id)
    if agent is not None:
        agent.grant_types.add(GRANT_TYPE)
    provider.add_token_grant(GRANT_TYPE, handler)
    return exchange
