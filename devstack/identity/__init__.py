"""The devstack identity provider: Auth0's wire protocol on loopback, built on authlib.

`create_identity_app(settings, issuer=...)` returns the Starlette app; `app.state.provider` is
the `IdentityProvider`. Optional extension modules in this package (`connected_accounts`,
`token_vault`, `ciba`, loaded in that order) each expose `install(provider)`; whatever it
returns is kept in `provider.extensions[name]`. What `provider` offers them:

- `provider.settings`, `provider.issuer` (with one trailing slash, from the bound port),
  `provider.data_dir` (the devstack data folder), `provider.clock()` (seconds; tests move it).
- `provider.authorization_server`: authlib's `AuthorizationServer`; `register_grant(cls)` for
  a synchronous authlib grant (inside a grant, `self.server.provider` is the provider), and
  `register_endpoint(...)`.
- `provider.add_token_grant(grant_type, handler, auth_methods=...)`: an *async* grant at
  `/oauth/token`. The provider parses the request, refuses repeated parameters, authenticates
  the client and checks `client.check_grant_type(grant_type)` (`unauthorized_client`) first;
  `handler(TokenRequest(client, form, headers, oauth_request))` returns a Starlette response
  (`provider.token_response(body)`, `provider.oauth_error(error, description, status)`).
- `provider.add_route(path, endpoint, methods=[...])`: Starlette routes (before the app is built).
- `provider.metadata`: a dict merged into `/.well-known/openid-configuration`;
  `provider.scopes_supported` (a list to extend), `provider.audiences` (a set of known APIs),
  `provider.default_audience`.
- `provider.users` (`UserStore`: `get(sub)`, `by_email(email)`, iteration) and
  `provider.clients` (`ClientRegistry`: `get(client_id)`, `add(Client)`; a `Client` has a
  mutable `grant_types` set, a `metadata` dict, e.g. for CIBA delivery settings, and its
  `allowed_logout_urls`); `provider.allowed_logout_urls` for a logout without `client_id`.
- Tokens: `provider.issue_tokens(client=, user=, scope=, grant_type=, audience=, ...)` makes a
  token response (RFC 9068 access token, ID token, rotating refresh token); `provider.sign_jwt`
  signs any claims with the provider key (`provider.signing_key`: `kid`, `key_set` to sign,
  `verify_set` of every published key, `rotate()` to start signing with a new key);
  `provider.verify_access_token(token, audience=None)` returns claims or None;
  `provider.user_for_refresh_token(token, client_id)` resolves a refresh token.
- Browser sessions: `provider.current_user(request)`, `provider.browser_session(request)`,
  `provider.csrf_token(request)` / `provider.check_csrf(request, value)` for forms, and
  `provider.login_redirect(request)` (log in, then come back to the same URL).
- `provider.login_throttle` (`login_throttle.LoginThrottle`): failed logins at `/u/login` slow
  down per account and per client address (Auth0's brute-force protection); 429 with
  `Retry-After` while a key waits.
- `provider.store` (`IdentityStore`, SQLite in the data folder) and `provider.read_params`.
- `devstack.identity.pages`: `page(title, body)`, `hidden(name, value)`, `error_page`,
  `message_page` for HTML in the provider's look (escape what you interpolate).

Tests log users in through the real flow with `devstack.identity.autologin.login(...)`.
"""

from devstack.identity.provider import (
    IdentityProvider,
    Lifetimes,
    TokenRequest,
    create_identity_app,
)

__all__ = ["IdentityProvider", "Lifetimes", "TokenRequest", "create_identity_app"]
