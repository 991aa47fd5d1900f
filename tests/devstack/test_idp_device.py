"""The device authorization grant (RFC 8628): pending, slow_down, approve on /activate, denied,
expired, used once; and the activation page's own checks."""

from __future__ import annotations

import re

import pytest

from settings import get_settings

from .idp_helpers import (
    Clock,
    agent_auth,
    claims_of,
    cli_id,
    http_client,
    make_provider,
    query_of,
)

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def idp(tmp_path, clock):
    return make_provider(tmp_path, clock)


async def _start(http, **extra):
    data = {"client_id": cli_id(), "scope": "openid profile offline_access", **extra}
    answer = await http.post("/oauth/device/code", data=data)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _poll(http, device_code):
    return await http.post(
        "/oauth/token",
        data={"grant_type": DEVICE, "device_code": device_code, "client_id": cli_id()},
    )


async def _login_at(http, url, email="alice@example.com"):
    """Open `url` as a browser would; log in when the provider asks; return the final page."""
    page = await http.get(url)
    if page.status_code == 302 and "/u/login" in page.headers["location"]:
        state = query_of(page)["state"]
        s = get_settings()
        password = s.alice_password if email.startswith("alice") else s.bob_password
        answer = await http.post(
            "/u/login",
            data={"state": state, "email": email, "password": password.get_secret_value()},
        )
        assert answer.status_code == 302
        page = await http.get(answer.headers["location"])
    return page


def _csrf(page) -> str:
    return re.search(r"name='csrf' value='([^']*)'", page.text).group(1)


async def test_device_flow_end_to_end(idp, clock):
    provider, app = idp
    async with http_client(app) as http, http_client(app) as browser:
        start = await _start(http, audience=get_settings().audience)
        assert start["verification_uri"] == provider.issuer + "activate"
        assert start["verification_uri_complete"].endswith(start["user_code"])
        assert start["interval"] == 5 and start["expires_in"] == 900
        pending = await _poll(http, start["device_code"])
        too_fast = await _poll(http, start["device_code"])
        clock.advance(11)  # the interval is now 10 s
        pending_again = await _poll(http, start["device_code"])

        page = await _login_at(browser, start["verification_uri_complete"])
        assert page.status_code == 200 and start["user_code"] in page.text
        approved = await browser.post(
            "/activate",
            data={"user_code": start["user_code"], "decision": "approve", "csrf": _csrf(page)},
        )
        clock.advance(11)
        tokens = await _poll(http, start["device_code"])
        clock.advance(11)
        again = await _poll(http, start["device_code"])
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    assert too_fast.status_code == 400 and too_fast.json()["error"] == "slow_down"
    assert pending_again.json()["error"] == "authorization_pending"
    assert approved.status_code == 200 and "approved" in approved.text
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["refresh_token"] and body["id_token"]
    _, claims = claims_of(body["access_token"], provider)
    assert claims["sub"].startswith("auth0|alice") and claims["client_id"] == cli_id()
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_denied(idp, clock):
    _, app = idp
    async with http_client(app) as http, http_client(app) as browser:
        start = await _start(http)
        page = await _login_at(
            browser, f"/activate?user_code={start['user_code']}", "bob@example.com"
        )
        denied = await browser.post(
            "/activate",
            data={"user_code": start["user_code"], "decision": "deny", "csrf": _csrf(page)},
        )
        answer = await _poll(http, start["device_code"])
        twice = await browser.post(
            "/activate",
            data={"user_code": start["user_code"], "decision": "approve", "csrf": _csrf(page)},
        )
    assert denied.status_code == 200 and "denied" in denied.text
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied"
    assert twice.status_code == 400  # a decision is final


async def test_expired(idp, clock):
    _, app = idp
    async with http_client(app) as http, http_client(app) as browser:
        start = await _start(http)
        clock.advance(901)
        answer = await _poll(http, start["device_code"])
        page = await _login_at(browser, f"/activate?user_code={start['user_code']}")
    assert answer.status_code == 400 and answer.json()["error"] == "expired_token"
    assert page.status_code == 400 and "invalid, used or expired" in page.text


async def test_user_code_is_normalized(idp):
    _, app = idp
    async with http_client(app) as http, http_client(app) as browser:
        start = await _start(http)
        sloppy = start["user_code"].replace("-", " ").lower()
        page = await _login_at(browser, "/activate?" + f"user_code={sloppy}")
    assert page.status_code == 200 and start["user_code"] in page.text and "Approve" in page.text


async def test_activation_page_checks(idp):
    _, app = idp
    async with http_client(app) as http, http_client(app) as browser:
        start = await _start(http)
        anonymous = await browser.get("/activate")
        anonymous_post = await browser.post(
            "/activate", data={"user_code": start["user_code"], "decision": "approve"}
        )
        entry = await _login_at(browser, "/activate")
        no_csrf = await browser.post(
            "/activate", data={"user_code": start["user_code"], "decision": "approve"}
        )
        page = await browser.get(f"/activate?user_code={start['user_code']}")
        bad_decision = await browser.post(
            "/activate",
            data={"user_code": start["user_code"], "decision": "maybe", "csrf": _csrf(page)},
        )
        unknown = await browser.post(
            "/activate", data={"user_code": "BCDF-GHJK", "decision": "approve", "csrf": _csrf(page)}
        )
        still_pending = await _poll(http, start["device_code"])
    assert anonymous.status_code == 302 and "/u/login" in anonymous.headers["location"]
    assert anonymous_post.status_code == 401
    assert entry.status_code == 200 and "user_code" in entry.text
    assert no_csrf.status_code == 403
    assert bad_decision.status_code == 400
    assert unknown.status_code == 400
    assert still_pending.json()["error"] == "authorization_pending"


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({}, None, 400, "invalid_request"),
        ({"client_id": "nobody"}, None, 400, "invalid_client"),
        ({"client_id": "warrant-cli", "scope": "openid root"}, None, 400, "invalid_scope"),
        ({"client_id": "warrant-cli", "audience": "https://nope"}, None, 403, "access_denied"),
        ({}, "agent", 400, "unauthorized_client"),
    ],
)
async def test_device_authorization_errors(idp, data, auth, status, error):
    _, app = idp
    async with http_client(app) as http:
        answer = await http.post(
            "/oauth/device/code", data=data, auth=agent_auth() if auth else None
        )
    assert answer.status_code in ((status, 401) if error == "invalid_client" else (status,))
    assert answer.json()["error"] == error


async def test_device_token_errors(idp):
    _, app = idp
    async with http_client(app) as http:
        start = await _start(http)
        missing = await http.post(
            "/oauth/token", data={"grant_type": DEVICE, "client_id": cli_id()}
        )
        unknown = await _poll(http, "not-a-device-code")
        agent = await http.post(
            "/oauth/token",
            data={"grant_type": DEVICE, "device_code": start["device_code"]},
            auth=agent_auth(),
        )
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"
    assert agent.status_code == 400 and agent.json()["error"] == "unauthorized_client"
