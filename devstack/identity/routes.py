"""The provider's HTTP endpoints at Auth0's paths: discovery, JWKS, authorize and login, token,
device authorization and activation, userinfo, revocation, logout."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from authlib.oidc.core import UserInfo
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from devstack.identity import pages
from devstack.identity.clients import Client, logout_url_allowed
from devstack.identity.login_throttle import LoginThrottled

if TYPE_CHECKING:
    from devstack.identity.provider import IdentityProvider, OAuthRequest

from devstack.identity.provider import SESSION_COOKIE, BadRequest, TokenRequest

_USER_CODE_CHARS = re.compile(r"[^A-Z]")


def normalize_user_code(raw: str) -> str:
    """`mqna jpoz`, `MQNAJPOZ` and `MQNA-JPOZ` are the same code (RFC 8628 6.1)."""
    letters = _USER_CODE_CHARS.sub("", raw.upper())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else letters


def _safe_return_to(value: str | None) -> str | None:
    # Only local paths: the login page is never an open redirect.
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


def _redirect_error(
    redirect_uri: str, error: str, description: str, params: dict[str, str]
) -> Response:
    """An OIDC error sent back to a verified redirect URI, with the request's state."""
    query = {"error": error, "error_description": description}
    if params.get("state"):
        query["state"] = params["state"]
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(f"{redirect_uri}{sep}{urlencode(query)}", status_code=302)


def provider_routes(provider: IdentityProvider) -> list[Route]:
    server = provider.authorization_server

    def invalid_request(message: str) -> JSONResponse:
        return provider.oauth_error("invalid_request", message)

    async def openid_configuration(request: Request) -> Response:
        return JSONResponse(provider.discovery())

    async def jwks(request: Request) -> Response:
        return JSONResponse(provider.signing_key.public_jwks())

    # authorization code + login ----------------------------------------------------------

    async def authorize(request: Request) -> Response:
        try:
            oreq = await provider.oauth_request(request)
        except BadRequest as exc:
            return HTMLResponse(pages.error_page("invalid_request", str(exc)), status_code=400)
        params = oreq.payload.data
        prompt = set(params.get("prompt", "").split())
        session = provider.browser_session(request)
        user = provider.users.get(session.user_id) if session and "login" not in prompt else None
        try:
            grant = server.get_consent_grant(oreq, end_user=user)
        except OAuth2Error as error:
            return _authorize_error(oreq, error)
        except ValueError:  # authlib refuses to echo characters an error may not carry
            return HTMLResponse(
                pages.error_page("invalid_request", "Malformed authorization request."),
                status_code=400,
            )
        if user is None or session is None:
            if "none" in prompt:
                return _redirect_error(
                    grant.redirect_uri, "login_required", "Login required", params
                )
            kept = [(k, v) for k, v in oreq.payload_pairs() if k != "prompt"]
            txn = provider.store.save_transaction(
                {"return_to": "/authorize?" + urlencode(kept), "client_id": params["client_id"]},
                provider.lifetimes.login_transaction,
            )
            return RedirectResponse(f"/u/login?{urlencode({'state': txn})}", status_code=302)
        # First-party clients: consent is implicit (as Auth0 skips it for first-party apps).
        # The devstack has no consent screen, so any other client is refused (fail closed).
        if not grant.client.first_party:
            return _redirect_error(
                grant.redirect_uri, "consent_required", "Consent required", params
            )
        oreq.auth_time = session.auth_time
        return server.create_authorization_response(oreq, grant_user=user, grant=grant)

    def _authorize_error(oreq: OAuthRequest, error: OAuth2Error) -> Response:
        if error.redirect_uri:
            return server.handle_error_response(oreq, error)
        # Never redirect to an unverified URI (RFC 6749 4.1.2.1): tell the user instead.
        text = f"{error.error}: {error.description or ''}".strip(": ")
        return HTMLResponse(pages.error_page("Authorization error", text), status_code=400)

    async def login_form(request: Request) -> Response:
        txn_id = request.query_params.get("state", "")
        txn = provider.store.find_transaction(txn_id) if txn_id else None
        if txn is None:
            return HTMLResponse(
                pages.error_page("Login", "This login link is invalid or has expired."), 400
            )
        client = provider.clients.get(txn.get("client_id"))
        return HTMLResponse(pages.login_page(txn_id, client_name=client.name if client else ""))

    async def login_submit(request: Request) -> Response:
        try:
            _, form_pairs = await provider.read_params(request)
        except BadRequest as exc:
            return HTMLResponse(pages.error_page("Login", str(exc)), 400)
        form = dict(form_pairs)
        txn_id = form.get("state", "")
        txn = provider.store.find_transaction(txn_id) if txn_id else None
        return_to = _safe_return_to(txn.get("return_to")) if txn else None
        if txn is None or return_to is None:
            return HTMLResponse(
                pages.error_page("Login", "This login link is invalid or has expired."), 400
            )
        email = form.get("email", "")
        client = provider.clients.get(txn.get("client_id"))
        address = request.client.host if request.client else ""
        try:
            provider.login_throttle.begin(email, address)
        except LoginThrottled as exc:
            # Refused before the password is checked: the answer says nothing about the guess.
            body = pages.login_page(
                txn_id, email=email, error=str(exc), client_name=client.name if client else ""
            )
            return HTMLResponse(
                body, status_code=429, headers={"Retry-After": str(exc.retry_after)}
            )
        # PBKDF2 takes tens of milliseconds: off the event loop
        user = await run_in_threadpool(provider.users.authenticate, email, form.get("password", ""))
        if user is None:
            body = pages.login_page(
                txn_id,
                email=email,
                error="Wrong email or password.",
                client_name=client.name if client else "",
            )
            return HTMLResponse(body, status_code=401)
        provider.login_throttle.succeeded(email, address)
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            provider.store.delete_session(old)  # a new login never reuses a session id
        token, _ = provider.store.create_session(user.sub, provider.lifetimes.session)
        response = RedirectResponse(return_to, status_code=302)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=provider.lifetimes.session,
            httponly=True,
            samesite="lax",
            secure=provider.issuer.startswith("https://"),
            path="/",
        )
        return response

    # token endpoint ----------------------------------------------------------------------

    async def token(request: Request) -> Response:
        try:
            oreq = await provider.oauth_request(request)
        except BadRequest as exc:
            return invalid_request(str(exc))
        for key, values in oreq.payload.datalist.items():
            if len(values) > 1:
                return invalid_request(f"Multiple '{key}' in request.")
        grant_type = oreq.payload.data.get("grant_type")
        if not grant_type:
            return invalid_request("Missing required parameter: grant_type")
        try:
            if grant_type in provider._async_grants:
                handler, methods = provider._async_grants[grant_type]
                client = server.authenticate_client(oreq, list(methods))
                if not client.check_grant_type(grant_type):
                    raise UnauthorizedClientError(
                        f"The client is not authorized to use 'grant_type={grant_type}'"
                    )
                return await handler(
                    TokenRequest(client, dict(oreq.form), dict(oreq.headers), oreq)
                )
            return server.create_token_response(oreq)
        except OAuth2Error as error:
            return server.handle_error_response(oreq, error)
        except ValueError:
            return invalid_request("Malformed token request.")

    # device authorization ----------------------------------------------------------------

    async def device_code(request: Request) -> Response:
        try:
            oreq = await provider.oauth_request(request)
        except BadRequest as exc:
            return invalid_request(str(exc))
        if not oreq.payload.data.get("client_id") and "authorization" not in oreq.headers:
            return provider.oauth_error("invalid_request", "Missing required parameter: client_id")
        try:
            return server.create_endpoint_response("device_authorization", oreq)
        except ValueError:
            return invalid_request("Malformed device authorization request.")

    async def activate(request: Request) -> Response:
        user = provider.current_user(request)
        if user is None:
            return provider.login_redirect(request)
        csrf = provider.csrf_token(request) or ""
        raw = request.query_params.get("user_code", "")
        if not raw:
            return HTMLResponse(pages.activate_entry_page(csrf))
        code = normalize_user_code(raw)
        credential = provider.store.find_user_code(code)
        if (
            credential is None
            or credential.status != "pending"
            or credential.expires_at <= provider.clock()
        ):
            return HTMLResponse(
                pages.activate_entry_page(
                    csrf, user_code=raw, error="That code is invalid, used or expired."
                ),
                status_code=400,
            )
        client = provider.clients.get(credential.client_id)
        return HTMLResponse(
            pages.activate_confirm_page(
                csrf,
                code,
                client.name if client else credential.client_id,
                credential.scope.split(),
                user.email,
            )
        )

    async def activate_decide(request: Request) -> Response:
        session = provider.browser_session(request)
        user = provider.users.get(session.user_id) if session else None
        if user is None or session is None:
            return HTMLResponse(pages.error_page("Device activation", "Please log in."), 401)
        try:
            _, pairs = await provider.read_params(request)
        except BadRequest as exc:
            return HTMLResponse(pages.error_page("Device activation", str(exc)), 400)
        form = dict(pairs)
        if not provider.check_csrf(request, form.get("csrf")):
            return HTMLResponse(
                pages.error_page("Device activation", "The form expired; please try again."), 403
            )
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return HTMLResponse(
                pages.error_page("Device activation", "Choose approve or deny."), 400
            )
        code = normalize_user_code(form.get("user_code", ""))
        if not provider.store.decide_device_code(
            code, user.sub, session.auth_time, approved=decision == "approve"
        ):
            return HTMLResponse(
                pages.error_page("Device activation", "That code is invalid, used or expired."),
                400,
            )
        if decision == "approve":
            return HTMLResponse(
                pages.message_page("Device approved", "You can return to your device.")
            )
        return HTMLResponse(pages.message_page("Request denied", "Nothing was shared."))

    # userinfo, revocation, logout --------------------------------------------------------

    async def userinfo(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        challenge = 'Bearer realm="userinfo"'
        if scheme.lower() != "bearer" or not value.strip():
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Missing bearer token."},
                status_code=401,
                headers={"WWW-Authenticate": challenge},
            )
        claims = provider.verify_access_token(value.strip(), audience=provider.issuer + "userinfo")
        user = provider.users.get(claims.get("sub")) if claims else None
        if claims is None or user is None:
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Invalid or expired token."},
                status_code=401,
                headers={"WWW-Authenticate": f'{challenge}, error="invalid_token"'},
            )
        scope = str(claims.get("scope", ""))
        if "openid" not in scope.split():
            return JSONResponse(
                {"error": "insufficient_scope", "error_description": "openid scope required."},
                status_code=403,
                headers={"WWW-Authenticate": f'{challenge}, error="insufficient_scope"'},
            )
        return JSONResponse(dict(UserInfo(user.claims(scope))))

    async def revoke(request: Request) -> Response:
        try:
            oreq = await provider.oauth_request(request)
        except BadRequest as exc:
            return invalid_request(str(exc))
        try:
            return server.create_endpoint_response("revocation", oreq)
        except ValueError:
            return invalid_request("Malformed revocation request.")

    async def logout(request: Request) -> Response:
        params = request.query_params
        return_to = params.get("returnTo") or params.get("post_logout_redirect_uri")
        client_id = params.get("client_id")
        client = provider.clients.get(client_id)
        if return_to and not _logout_target_allowed(return_to, client_id, client):
            return HTMLResponse(
                pages.error_page("Logout", "That returnTo URL is not allowed."), status_code=400
            )
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            provider.store.delete_session(cookie)
        if return_to:
            if params.get("state"):
                sep = "&" if urlsplit(return_to).query else "?"
                return_to = f"{return_to}{sep}{urlencode({'state': params['state']})}"
            response: Response = RedirectResponse(return_to, status_code=302)
        else:
            response = HTMLResponse(pages.message_page("Logged out", "You are logged out."))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def _logout_target_allowed(url: str, client_id: str | None, client: Client | None) -> bool:
        """As Auth0: the client's Allowed Logout URLs when a client_id is given (an unknown one:
        none), else the tenant's; no prefix, port, loopback or issuer exception."""
        if client_id:
            return client is not None and client.check_logout_url(url)
        return logout_url_allowed(url, provider.allowed_logout_urls)

    return [
        Route("/.well-known/openid-configuration", openid_configuration),
        Route("/.well-known/jwks.json", jwks),
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/u/login", login_form, methods=["GET"]),
        Route("/u/login", login_submit, methods=["POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/device/code", device_code, methods=["POST"]),
        Route("/activate", activate, methods=["GET"]),
        Route("/activate", activate_decide, methods=["POST"]),
        Route("/userinfo", userinfo, methods=["GET", "POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
        Route("/v2/logout", logout, methods=["GET"]),
        Route("/oidc/logout", logout, methods=["GET"]),
    ]
