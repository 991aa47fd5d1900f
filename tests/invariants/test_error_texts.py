"""No token in error texts: providers that echo what they were sent (the user's token, the
client secret, the notification token) in `error_description` or `error`, at megabyte length.
The agent's exceptions, tool messages and checkpoints must carry none of it."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from auth.ciba import ApprovalRequest, CIBAClient
from auth.errors import AuthError
from auth.token_vault import TokenVault
from graph.agent import build_graph
from graph.context import Context
from tests.token_vault.helpers import serve

SUBJECT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWFsaWNl"
SECRET = "client-secret-7f3a9c2e-never-show-me"
NOTIFY = "notification-token-1b2c3d4e5f"


def echoing_provider(field: str) -> Starlette:
    """Answers every POST with a 400 whose `field` echoes the whole form it received."""

    async def discovery(request: Request) -> JSONResponse:
        base = str(request.base_url)
        return JSONResponse(
            {
                "issuer": base,
                "token_endpoint": f"{base}oauth/token",
                "backchannel_authentication_endpoint": f"{base}bc-authorize",
            }
        )

    async def echo(request: Request) -> JSONResponse:
        form = dict(await request.form())
        text = "you sent " + json.dumps(form) + " " + "x" * 100_000
        body = {"error": "invalid_request", "error_description": text}
        if field == "error":
            body = {"error": text}
        return JSONResponse(body, status_code=400)

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/oauth/token", echo, methods=["POST"]),
            Route("/bc-authorize", echo, methods=["POST"]),
        ]
    )


def clean(text: str) -> None:
    for secret in (SUBJECT, SECRET, NOTIFY):
        assert secret not in text
    assert len(text) < 2000, "an error text a person can read"


@pytest.fixture(params=["error_description", "error"])
def provider_url(request):
    with serve(echoing_provider(request.param)) as url:
        yield url + "/"


async def test_token_vault_refusals_never_echo_the_token_or_secret(provider_url) -> None:
    vault = TokenVault(provider_url, "agent", SECRET)
    with pytest.raises(AuthError) as caught:
        await vault.get_token(user_id="alice", subject_token=SUBJECT, connection="github")
    clean(str(caught.value))
    clean(repr(caught.value))


async def test_ciba_refusals_never_echo_the_secret_or_notification_token(provider_url) -> None:
    client = CIBAClient(provider_url, "agent", SECRET)
    try:
        with pytest.raises(AuthError) as caught:
            await client.start("alice", "Approve it", ["openid"], notification_token=NOTIFY)
        clean(str(caught.value))
        request = ApprovalRequest(
            auth_req_id="req-" + SUBJECT, user_id="alice", binding_message="x", expires_at=9e12
        )
        with pytest.raises(AuthError) as caught:
            await client.poll(request)
        clean(str(caught.value))
    finally:
        await client.aclose()


async def test_the_graph_never_stores_an_echoed_token(provider_url, monkeypatch) -> None:
    from pydantic import SecretStr

    from auth.token_vault import get_token_vault
    from settings import get_settings

    with get_settings.override(issuer=provider_url, agent_client_secret=SecretStr(SECRET)):
        get_token_vault().clear()
        saver = InMemorySaver()
        graph = build_graph(checkpointer=saver)
        ctx = Context(user_id="auth0|alice", user_email="alice@example.com", subject_token=SUBJECT)
        config = {"configurable": {"thread_id": "echo"}}
        out = await graph.ainvoke(
            {"messages": [("user", "search github for popular AI repositories")]},
            config,
            context=ctx,
        )
        [result] = [m for m in out["messages"] if isinstance(m, ToolMessage)]
        assert result.status == "error"
        clean(result.content)
        stored = repr([c async for c in saver.alist(config)])
        for secret in (SUBJECT, SECRET):
            assert secret not in stored
        get_token_vault().clear()
