"""The extension surface: an `install(provider)` module adds a route, an async grant, metadata."""

from __future__ import annotations

import sys
import types

import pytest
from starlette.responses import JSONResponse

from devstack.identity import provider as provider_module
from devstack.identity.clients import Client

from .idp_helpers import agent_auth, basic, cli_id, http_client, make_provider, sign_in

GRANT = "urn:example:params:oauth:grant-type:echo"


def _install(provider):
    provider.metadata["example_endpoint"] = provider.issuer + "example/whoami"
    provider.scopes_supported.append("example:read")
    provider.clients.get(agent_auth()[0]).grant_types.add(GRANT)

    async def whoami(request):
        user = provider.current_user(request)
        return JSONResponse(
            {"user": user.email if user else None, "csrf": bool(provider.csrf_token(request))}
        )

    async def echo(token_request):
        if token_request.form.get("fail"):
            return provider.oauth_error("invalid_request", 'bad "input"\n')
        user = provider.users.by_email("alice@example.com")
        body = provider.issue_tokens(
            client=token_request.client, user=user, scope="openid", grant_type=GRANT
        )
        return provider.token_response(body)

    provider.add_route("/example/whoami", whoami)
    provider.add_token_grant(GRANT, echo)
    return "installed"


@pytest.fixture
def extended(tmp_path, monkeypatch):
    module = types.ModuleType("devstack.identity._example_ext")
    module.install = _install
    monkeypatch.setitem(sys.modules, "devstack.identity._example_ext", module)
    monkeypatch.setattr(
        provider_module, "EXTENSIONS", (*provider_module.EXTENSIONS, "_example_ext")
    )
    return make_provider(tmp_path)


async def test_extension_is_installed_and_served(extended):
    provider, app = extended
    assert provider.extensions["_example_ext"] == "installed"
    agent_id, secret = agent_auth()
    async with http_client(app) as http:
        doc = (await http.get("/.well-known/openid-configuration")).json()
        anonymous = (await http.get("/example/whoami")).json()
        await sign_in(http)
        signed_in = (await http.get("/example/whoami")).json()
        ok = await http.post(
            "/oauth/token", data={"grant_type": GRANT}, headers=basic(agent_id, secret)
        )
        bad_secret = await http.post(
            "/oauth/token", data={"grant_type": GRANT}, headers=basic(agent_id, "x")
        )
        public = await http.post("/oauth/token", data={"grant_type": GRANT, "client_id": cli_id()})
        failing = await http.post(
            "/oauth/token", data={"grant_type": GRANT, "fail": "1"}, headers=basic(agent_id, secret)
        )
        repeated = await http.post(
            "/oauth/token",
            content=f"grant_type={GRANT}&grant_type={GRANT}",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                **basic(agent_id, secret),
            },
        )
    assert doc["example_endpoint"].endswith("/example/whoami")
    assert GRANT in doc["grant_types_supported"] and "example:read" in doc["scopes_supported"]
    assert anonymous == {"user": None, "csrf": False}
    assert signed_in == {"user": "alice@example.com", "csrf": True}
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
    claims = provider.verify_access_token(ok.json()["access_token"])
    assert claims["client_id"] == agent_id and claims["sub"].startswith("auth0|alice")
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    assert failing.status_code == 400 and failing.json()["error_description"] == "bad input"
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"


async def test_client_without_the_extension_grant_is_unauthorized(extended):
    provider, app = extended
    provider.clients.add(
        Client(client_id="other", name="Other", client_secret="s", grant_types=set())
    )
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/token", data={"grant_type": GRANT}, headers=basic("other", "s")
        )
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client"


def test_routes_cannot_be_added_after_the_app_is_built(extended):
    provider, _ = extended
    with pytest.raises(RuntimeError):
        provider.add_route("/late", lambda request: None)
