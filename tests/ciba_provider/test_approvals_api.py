"""The user's side: the JSON API behind `warrant approvals` and the approvals page (its forms,
CSRF, per-user isolation and escaping), driven over HTTP as the CLI and a browser would."""

from __future__ import annotations

import html
import json
import re

import pytest

from auth.errors import ApprovalDenied
from settings import get_settings
from tests.devstack.idp_helpers import sign_in

from .helpers import (
    ALICE,
    BOB,
    Clock,
    agent_secret,
    authenticator_token,
    ciba_client,
    fresh_provider,
    http_client,
    user_token,
    user_tokens,
)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def idp(tmp_path, clock):
    return fresh_provider(tmp_path, clock)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _start(app, clock, user=ALICE, message="Create gist notes.md", **kwargs):
    client = ciba_client(app, clock)
    return client, await client.start(user, message, ["create:gist"], **kwargs)


async def test_list_and_approve_through_the_api(idp, clock):
    _, app, ciba = idp
    client, request = await _start(
        app,
        clock,
        authorization_details=[
            {"type": "warrant_tool_call", "tool": "create_public_gist", "action_digest": "f" * 64}
        ],
    )
    token = await authenticator_token(app)
    async with http_client(app) as http:
        listed = await http.get("/api/approvals", headers=bearer(token))
        assert listed.status_code == 200
        [item] = listed.json()
        assert set(item) >= {
            "id",
            "binding_message",
            "client_id",
            "client_name",
            "authorization_details",
            "scope",
            "audience",
            "status",
            "expires_at",
        }
        assert item["id"].startswith("apr_") and item["id"] != request.auth_req_id
        assert request.auth_req_id not in listed.text
        assert item["binding_message"] == "Create gist notes.md"
        assert item["client_name"] == "Warrant agent"
        assert item["authorization_details"][0]["tool"] == "create_public_gist"
        assert item["scope"] == "openid create:gist" and item["status"] == "pending"
        assert item["audience"] == get_settings().audience
        decided = await http.post(
            f"/api/approvals/{item['id']}", json={"decision": "approve"}, headers=bearer(token)
        )
        assert decided.status_code == 200 and decided.json()["status"] == "approved"
        again = await http.post(
            f"/api/approvals/{item['id']}", json={"decision": "deny"}, headers=bearer(token)
        )
        assert again.status_code == 409 and again.json()["error"] == "conflict"
        one = await http.get(f"/api/approvals/{item['id']}", headers=bearer(token))
        assert one.json()["status"] == "approved"
        pending = await http.get("/api/approvals?status=pending", headers=bearer(token))
        assert pending.json() == []
    assert (await client.poll(request)).access_token
    assert ciba.pending(ALICE) == []


async def test_another_users_request_is_invisible_and_undecidable(idp, clock):
    _, app, ciba = idp
    _, request = await _start(app, clock)
    [record] = ciba.pending(ALICE)
    bob = await authenticator_token(app, "bob@example.com")
    async with http_client(app) as http:
        assert (await http.get("/api/approvals", headers=bearer(bob))).json() == []
        peek = await http.get(f"/api/approvals/{record.id}", headers=bearer(bob))
        steal = await http.post(
            f"/api/approvals/{record.id}", json={"decision": "approve"}, headers=bearer(bob)
        )
        by_auth_req_id = await http.post(
            f"/api/approvals/{request.auth_req_id}",
            json={"decision": "approve"},
            headers=bearer(bob),
        )
    assert peek.status_code == 404 and steal.status_code == 404
    assert by_auth_req_id.status_code == 404
    assert ciba.get(record.id).status == "pending"
    assert ciba.requests(BOB) == []


async def test_expired_requests_cannot_be_decided(idp, clock):
    _, app, ciba = idp
    await _start(app, clock, requested_expiry=10)
    [record] = ciba.pending(ALICE)
    token = await authenticator_token(app)
    clock.advance(11)
    async with http_client(app) as http:
        late = await http.post(
            f"/api/approvals/{record.id}", json={"decision": "approve"}, headers=bearer(token)
        )
        listed = (await http.get("/api/approvals", headers=bearer(token))).json()
    assert late.status_code == 409 and "expired" in late.json()["error_description"]
    assert listed[0]["status"] == "expired"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not-a-jwt"},
    ],
)
async def test_no_valid_token_is_401(idp, clock, headers):
    _, app, ciba = idp
    await _start(app, clock)
    [record] = ciba.pending(ALICE)
    async with http_client(app) as http:
        listed = await http.get("/api/approvals", headers=headers)
        decided = await http.post(
            f"/api/approvals/{record.id}", json={"decision": "approve"}, headers=headers
        )
    for answer in (listed, decided):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert ciba.get(record.id).status == "pending"


async def test_an_application_token_never_approves(idp, clock):
    """The agent holds tokens for the user (e.g. from an earlier approval): they must not answer."""
    _, app, ciba = idp
    client, first = await _start(app, clock)
    ciba.decide(first.auth_req_id, ALICE, approve=True)
    agent_token = (await client.poll(first)).access_token
    await _start(app, clock, message="Create another gist")
    [record] = ciba.pending(ALICE)
    async with http_client(app) as http:
        answer = await http.post(
            f"/api/approvals/{record.id}",
            json={"decision": "approve"},
            headers=bearer(agent_token),
        )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
    assert ciba.get(record.id).status == "pending"


async def test_the_users_access_token_never_approves(idp, clock):
    """The agent server receives the user's own CLI access token with every request: were it
    accepted here, the agent could approve its own requests."""
    _, app, ciba = idp
    await _start(app, clock)
    [record] = ciba.pending(ALICE)
    access_token = await user_token(app)
    async with http_client(app) as http:
        listed = await http.get("/api/approvals", headers=bearer(access_token))
        decided = await http.post(
            f"/api/approvals/{record.id}",
            json={"decision": "approve"},
            headers=bearer(access_token),
        )
    for answer in (listed, decided):
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_token"
        assert "authenticator" in answer.json()["error_description"]
    assert ciba.get(record.id).status == "pending"


async def test_authenticator_enrollment_needs_the_clis_own_refresh_token(idp, clock):
    _, app, ciba = idp
    await _start(app, clock)
    [record] = ciba.pending(ALICE)
    tokens = await user_tokens(app)
    s = get_settings()
    agent_id, agent_secret_value = agent_secret()
    async with http_client(app) as http:

        async def enroll(**form):
            return await http.post("/api/approvals/authenticator", data=form)

        refused = [
            # the agent is not the user's authenticator, even with its own secret
            (
                await enroll(
                    client_id=agent_id,
                    client_secret=agent_secret_value,
                    refresh_token=tokens["refresh_token"],
                ),
                401,
                "invalid_client",
            ),
            (
                await enroll(client_id="nobody", refresh_token=tokens["refresh_token"]),
                401,
                "invalid_client",
            ),
            # an access token is not a refresh token
            (
                await enroll(client_id=s.cli_client_id, refresh_token=tokens["access_token"]),
                400,
                "invalid_grant",
            ),
            (
                await enroll(client_id=s.cli_client_id, refresh_token="made-up"),
                400,
                "invalid_grant",
            ),
            (await enroll(client_id=s.cli_client_id), 400, "invalid_request"),
            (await enroll(refresh_token=tokens["refresh_token"]), 400, "invalid_request"),
        ]
        for answer, status, error in refused:
            assert answer.status_code == status, answer.text
            assert answer.json()["error"] == error
        # a made-up bearer and an expired credential are refused too
        token = (
            await enroll(client_id=s.cli_client_id, refresh_token=tokens["refresh_token"])
        ).json()["authenticator_token"]
        made_up = await http.get("/api/approvals", headers=bearer("x" * 43))
        assert made_up.status_code == 401
        assert (await http.get("/api/approvals", headers=bearer(token))).status_code == 200
        clock.advance(601)
        late = await http.post(
            f"/api/approvals/{record.id}", json={"decision": "approve"}, headers=bearer(token)
        )
    assert late.status_code == 401 and late.json()["error"] == "invalid_token"
    assert ciba.get(record.id).status == "pending"


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b'{"decision": "yes"}', b'{"decision": ["approve"]}']
)
async def test_bad_bodies_are_400(idp, clock, body):
    _, app, ciba = idp
    await _start(app, clock)
    [record] = ciba.pending(ALICE)
    token = await authenticator_token(app)
    async with http_client(app) as http:
        answer = await http.post(
            f"/api/approvals/{record.id}",
            content=body,
            headers={**bearer(token), "Content-Type": "application/json"},
        )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert ciba.get(record.id).status == "pending"


# the page over plain HTTP (the browser test drives it in Chromium) ------------------------------

_CSRF = re.compile(r"name='csrf' value='([^']*)'")


async def test_page_needs_a_login_and_shows_only_the_users_requests(idp, clock):
    _, app, _ = idp
    await _start(app, clock, message="Alice only")
    await _start(app, clock, user=BOB, message="Bob only")
    async with http_client(app) as browser:
        first = await browser.get("/approvals")
        assert first.status_code == 302 and "/u/login" in first.headers["location"]
        await sign_in(browser, "bob@example.com")
        page = await browser.get("/approvals")
    assert page.status_code == 200
    assert "Bob only" in page.text and "Alice only" not in page.text
    assert "Warrant agent" in page.text and "create:gist" in page.text


async def test_page_escapes_what_it_shows(idp, clock):
    _, app, _ = idp
    evil = [
        {
            "type": "warrant_tool_call",
            "tool": "<script>alert(1)</script>",
            "action_digest": "'\"><img src=x onerror=alert(2)>",
            "note": "<b>bold</b>",
        }
    ]
    await _start(app, clock, authorization_details=evil)
    async with http_client(app) as browser:
        await sign_in(browser)
        page = await browser.get("/approvals")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "<img" not in page.text and "<b>bold" not in page.text


async def test_page_decisions_need_the_csrf_token_and_the_right_user(idp, clock):
    _, app, ciba = idp
    client, request = await _start(app, clock)
    [record] = ciba.pending(ALICE)
    async with http_client(app) as alice, http_client(app) as bob:
        await sign_in(alice)
        await sign_in(bob, "bob@example.com")
        page = await alice.get("/approvals")
        csrf = _CSRF.search(page.text).group(1)
        bob_csrf = _CSRF.search((await bob.get("/approvals")).text)
        no_csrf = await alice.post("/approvals", data={"id": record.id, "decision": "approve"})
        wrong_csrf = await alice.post(
            "/approvals", data={"id": record.id, "decision": "approve", "csrf": "forged"}
        )
        assert no_csrf.status_code == 403 and wrong_csrf.status_code == 403
        bob_page = (await bob.get("/approvals")).text
        assert bob_csrf is None  # nothing for bob to answer, so no form at all
        assert "No approval requests are waiting" in bob_page
        anonymous = await ciba_client(app, clock)._http.post(
            "http://127.0.0.1:9400/approvals",
            data={"id": record.id, "decision": "approve", "csrf": csrf},
        )
        assert anonymous.status_code == 401
        denied = await alice.post(
            "/approvals", data={"id": record.id, "decision": "deny", "csrf": csrf}
        )
        assert denied.status_code == 303
        after = await alice.get(denied.headers["location"])
        twice = await alice.post(
            "/approvals", data={"id": record.id, "decision": "approve", "csrf": csrf}
        )
    assert "You denied" in after.text and "Recent" in after.text
    assert twice.status_code == 409
    with pytest.raises(ApprovalDenied):
        await client.poll(request)


async def test_wait_for_request_finds_the_new_request(idp, clock):
    _, app, ciba = idp
    with pytest.raises(TimeoutError):
        await ciba.wait_for_request(ALICE, timeout=0.05)
    await _start(app, clock, message="First")
    await _start(app, clock, message="Second")
    found = await ciba.wait_for_request(ALICE, binding_message="Second", timeout=1)
    assert found.binding_message == "Second"
    assert json.loads(json.dumps(ciba.view(found)))["status"] == "pending"


_PRE = re.compile(r"<pre class='value'>(.*?)</pre>", re.S)
_MARK = re.compile(r"<span class='ctl' title='U\+([0-9A-F]{4,6})'>\[U\+[0-9A-F]{4,6}\]</span>")


async def test_page_shows_every_argument_in_full_and_every_character_visibly(idp, clock):
    """A long argument is not cut, and characters a browser would hide are shown as U+XXXX."""
    _, app, _ = idp
    tail = "TAIL-rm -rf ~ <b>&amp;</b>"
    content = "line one\nline\ttwo " + "x" * 5000 + " \u202e\u200b\x00\x1b[2J\r\u2028 " + tail
    details = [
        {
            "type": "warrant_tool_call",
            "tool": "create_public_gist",
            "action_digest": "a" * 64,
            "arguments": {"filename": "notes.md", "content": content, "public": True},
        }
    ]
    await _start(app, clock, authorization_details=details)
    async with http_client(app) as browser:
        await sign_in(browser)
        page = (await browser.get("/approvals")).text
    boxes = _PRE.findall(page)
    shown = [html.unescape(_MARK.sub(lambda m: chr(int(m.group(1), 16)), box)) for box in boxes]
    # the whole value, character for character, in one scrollable box
    assert content in shown and "notes.md" in shown and "true" in shown
    assert "pre.value{white-space:pre-wrap" in page and "overflow:auto" in page
    # nothing a browser would drop, reorder or hide reaches it raw
    for hidden in ("\u202e", "\u200b", "\x00", "\x1b", "\r", "\u2028"):
        assert hidden not in page
    for code in ("202E", "200B", "0000", "001B", "000D", "2028"):
        assert f"[U+{code}]" in page
    assert "<b>&amp;</b>" not in page and "&lt;b&gt;&amp;amp;&lt;/b&gt;" in page
    # the box scrolls, so the page says how much it holds
    assert f"{len(content):,} characters on 2 lines: scroll the box" in page
    assert page.count("value-size") == 1  # short values need no such note
