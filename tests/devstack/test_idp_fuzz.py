"""Random malformed requests at every endpoint: an OAuth error or a page, never a 500.

The in-process transport re-raises any exception the app lets escape, so a crash fails loudly.
"""

from __future__ import annotations

import random
import string

import pytest

from .idp_helpers import agent_auth, cli_id, http_client, make_provider, sign_in

NAMES = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "scope",
    "audience",
    "device_code",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "user_code",
    "decision",
    "csrf",
    "returnTo",
    "email",
    "password",
]
VALUES = [
    "",
    " ",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "code",
    "token",
    "S256",
    "plain",
    "none",
    "openid",
    "openid profile email offline_access",
    "http://127.0.0.1:1/callback",
    'http://127.0.0.1:1/callback"\\',
    "https://evil.example.com/",
    "javascript:alert(1)",
    "\x00",
    "\u00e9\u4e2d",
    "%",
    "a" * 5000,
    "warrant-cli",
    "warrant-agent",
    "{}",
    "[]",
]
PATHS = [
    ("GET", "/authorize"),
    ("POST", "/authorize"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/device/code"),
    ("POST", "/oauth/revoke"),
    ("GET", "/userinfo"),
    ("GET", "/activate"),
    ("POST", "/activate"),
    ("GET", "/u/login"),
    ("POST", "/u/login"),
    ("GET", "/v2/logout"),
]


def _value(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 40)))
    return rng.choice(VALUES)


@pytest.mark.parametrize("signed_in", [False, True])
async def test_random_requests_never_fail_the_server(tmp_path, signed_in):
    rng = random.Random(20261128 + signed_in)
    _, app = make_provider(tmp_path)
    async with http_client(app) as http:
        if signed_in:
            await sign_in(http)
        for _ in range(400):
            method, path = rng.choice(PATHS)
            params = [(rng.choice(NAMES), _value(rng)) for _ in range(rng.randint(0, 8))]
            if rng.random() < 0.5:
                params.append(("client_id", rng.choice([cli_id(), agent_auth()[0]])))
            headers = {}
            if rng.random() < 0.2:
                headers["Authorization"] = rng.choice(
                    ["Basic !!!", "Bearer x.y.z", "Basic " + "QQ==", "Negotiate abc"]
                )
            if method == "GET":
                answer = await http.get(path, params=params, headers=headers)
            elif rng.random() < 0.2:
                answer = await http.post(
                    path,
                    content=bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))),
                    headers={
                        **headers,
                        "Content-Type": rng.choice(
                            ["application/json", "application/x-www-form-urlencoded", "text/plain"]
                        ),
                    },
                )
            else:
                answer = await http.post(path, data=dict(params), headers=headers)
            assert answer.status_code < 500, (method, path, params, answer.text[:300])
