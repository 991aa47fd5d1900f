"""The approvals page in a real headless Chromium, as a person would use it: alice logs in through
the provider's login page, sees the agent's request, clicks Approve, and the agent's poll then
returns the tokens; bob, logged in too, never sees alice's request."""

from __future__ import annotations

import os
import uuid

import pytest

from auth.ciba import CIBAClient, authorization_details
from devstack.identity.users import subject_for

CHROMIUM = "/usr/bin/chromium"
ALICE = subject_for("alice@example.com")

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"Debian's chromium is not installed at {CHROMIUM}"
    ),
]

async_playwright = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed"
).async_playwright


async def _log_in(page, url: str, email: str, password: str) -> None:
    await page.goto(url)
    assert "/u/login" in page.url, page.url  # the provider asks who we are first
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/approvals")


async def test_alice_approves_in_chromium_and_bob_sees_nothing(ciba_stack):
    s = ciba_stack.settings
    message = f"Create public gist notes.md #{uuid.uuid4().hex[:6]}"
    agent = CIBAClient(
        ciba_stack.issuer, s.agent_client_id, s.agent_client_secret.get_secret_value()
    )
    digest = uuid.uuid4().hex * 2
    request = await agent.start(
        ALICE,
        message,
        ["create:gist"],
        audience=s.audience,
        authorization_details=authorization_details("create_public_gist", digest),
    )
    url = ciba_stack.issuer + "approvals"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        try:
            bob = await (await browser.new_context()).new_page()
            await _log_in(bob, url, "bob@example.com", s.bob_password.get_secret_value())
            assert message not in await bob.content()
            assert await bob.locator("#none-pending").is_visible()

            alice = await (await browser.new_context()).new_page()
            await _log_in(alice, url, "alice@example.com", s.alice_password.get_secret_value())
            card = alice.locator("section.request", has_text=message)
            await card.wait_for()
            text = await card.inner_text()
            assert "Warrant agent" in text and "create_public_gist" in text
            assert digest in text and "create:gist" in text and "Time left" in text
            await card.get_by_role("button", name="Approve").click()
            await alice.wait_for_url("**/approvals?decided=*")
            notice = await alice.get_by_role("status").inner_text()
            assert "You approved" in notice and message in notice
            assert await alice.locator("section.request", has_text=message).count() == 0
            history = alice.locator("#history tr", has_text=message)
            assert "approved" in await history.inner_text()

            await bob.reload()
            assert message not in await bob.content()
        finally:
            await browser.close()
    granted = await agent.poll(request)
    await agent.aclose()
    assert "create:gist" in granted.scope.split()
