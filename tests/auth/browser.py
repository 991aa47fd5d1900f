"""A scripted browser for login tests: follows the provider's pages as a person would."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx

_FIELD = re.compile(r"name='(state|csrf|user_code)' value='([^']*)'")


def _fields(html: str) -> dict[str, str]:
    return dict(_FIELD.findall(html))


async def _login_form(http: httpx.AsyncClient, page: httpx.Response, email: str, password: str):
    assert "/u/login" in str(page.url), f"expected the login page, got {page.url}"
    return await http.post(
        urljoin(str(page.url), "/u/login"),
        data={"state": _fields(page.text)["state"], "email": email, "password": password},
    )


async def authorize_in_browser(url: str, email: str, password: str) -> httpx.Response:
    """Open the authorize URL, log in, and follow the redirect to the loopback callback."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as http:
        page = await http.get(url)
        return await _login_form(http, page, email, password)


async def approve_device(
    verification_uri_complete: str, email: str, password: str, decision: str = "approve"
) -> httpx.Response:
    """Open the activation link, log in, and approve (or deny) the device."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as http:
        page = await http.get(verification_uri_complete)
        confirm = await _login_form(http, page, email, password)
        fields = _fields(confirm.text)
        assert "csrf" in fields, confirm.text[:300]
        return await http.post(
            urljoin(str(confirm.url), "/activate"),
            data={"csrf": fields["csrf"], "user_code": fields["user_code"], "decision": decision},
        )
