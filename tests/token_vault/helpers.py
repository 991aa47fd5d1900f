"""Helpers for the Token Vault tests: serve an ASGI app on an ephemeral port, do GitHub's OAuth."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from settings import get_settings


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1:0 in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and server.servers):
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def callback_url() -> str:
    return get_settings().issuer_url + "connected-accounts/callback"


async def github_grant(
    http: httpx.AsyncClient,
    login: str = "alice",
    password: str = "alice-password",
    scopes: str = "gist read:user",
) -> dict:
    """The OAuth code flow at the local GitHub, as the provider's callback would finish it."""
    s = get_settings()
    params = {
        "client_id": s.devstack_github_client_id,
        "redirect_uri": callback_url(),
        "scope": scopes,
        "state": "st-1",
    }
    page = await http.get("/login/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    answer = await http.post(
        "/login/oauth/authorize",
        data={**params, "login": login, "password": password, "decision": "authorize"},
    )
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st-1"]
    token = await http.post(
        "/login/oauth/access_token",
        data={
            "client_id": s.devstack_github_client_id,
            "client_secret": s.devstack_github_client_secret.get_secret_value(),
            "code": query["code"][0],
            "redirect_uri": callback_url(),
        },
        headers={"Accept": "application/json"},
    )
    return token.json()
