"""The runtime context (`context_schema`): who calls, and the caller's own token.

`signed_in_context(token)` builds it from a validated access token, as `warrant chat` and the
demo do.

Plain Python callers pass `Context(user_id=..., user_email=..., subject_token=...)` to
`graph.ainvoke(..., context=...)`. The context is never checkpointed. On the LangGraph server
the identity comes from the server's auth instead, and the token from `auth.credentials`: the
token fields are left out of the published JSON schema, so the server drops them from any
context a client sends (a token never travels through the run API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic.json_schema import SkipJsonSchema

from auth.errors import LoginRequired, ProviderUnavailable
from auth.token_vault import SUBJECT_TOKEN_TYPE_ACCESS
from settings import get_settings


@dataclass(frozen=True)
class Context:
    """Run-scoped facts about the caller; the token fields never print."""

    user_id: str | None = None
    user_email: str | None = None
    subject_token: SkipJsonSchema[str | None] = field(default=None, repr=False)
    subject_token_type: SkipJsonSchema[str] = field(default=SUBJECT_TOKEN_TYPE_ACCESS, repr=False)


async def signed_in_context(token: str | None = None) -> Context:
    """The runtime context for the signed-in user: identity from the validated access token.

    Without `token`, the login stored by `warrant login` is used (renewed when about to expire).
    """
    email_hint: str | None = None
    if token is None:
        from auth.login import current_tokens

        tokens = await current_tokens()  # LoginRequired when there is no usable login
        token, email_hint = tokens.access_token, tokens.email or None
    if not token:
        raise LoginRequired("You are not logged in: run `warrant login` first.")
    from auth.jwt import JWTValidator

    validator = JWTValidator.from_settings()
    claims = await validator.validate(token)
    sub = str(claims["sub"])
    email = claims.get("email") or claims.get(get_settings().email_claim)
    if not isinstance(email, str) or not email:
        # Access tokens (RFC 9068, Auth0) usually carry no email: ask userinfo, as Auth0 apps
        # do; the login's own record (from its ID token) is the fallback.
        email = await _userinfo_email(token, sub, validator) or email_hint
    return Context(user_id=sub, user_email=email, subject_token=token)


async def _userinfo_email(token: str, sub: str, validator: Any) -> str | None:
    """The user's email from the provider's userinfo endpoint, when it offers one."""
    import httpx

    endpoint = (await validator.metadata()).userinfo_endpoint
    if not endpoint:
        return None
    try:
        async with httpx.AsyncClient(timeout=get_settings().http_timeout_seconds) as http:
            answer = await http.get(endpoint, headers={"Authorization": f"Bearer {token}"})
        body = answer.json() if answer.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        raise ProviderUnavailable("The identity provider", "userinfo failed") from None
    if not isinstance(body, dict) or body.get("sub") != sub:
        return (
            None  # userinfo for someone else (or nothing usable): no email rather than a wrong one
        )
    email = body.get("email")
    return (
        email
        if isinstance(email, str) and email and body.get("email_verified") is not False
        else None
    )
