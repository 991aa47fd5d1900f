"""Ping delivery: the provider notifies the client's endpoint (a real local Starlette server) with
the client's bearer token and exactly `{"auth_req_id": ...}`, on approval, denial and expiry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth.errors import ApprovalDenied, ApprovalExpired, ProviderUnavailable
from devstack.identity import IdentityProvider
from devstack.serving import serving
from settings import get_settings

from .helpers import ALICE, ISSUER, Clock, ciba_client, fresh_provider

NOTIFICATION_TOKEN = "nt-Secret.Token_123"


class Receiver:
    """The client's notification endpoint: records every call, answers the scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        self.arrived = asyncio.Event()

    async def endpoint(self, request: Request) -> Response:
        self.calls.append((dict(request.headers), await request.body()))
        self.arrived.set()
        return Response(status_code=self.statuses.pop(0) if self.statuses else 204)


@contextlib.asynccontextmanager
async def serve(receiver: Receiver):
    app = Starlette(routes=[Route("/ciba/callback", receiver.endpoint, methods=["POST"])])
    async with serving(app, name="the notification receiver") as base:
        yield f"{base}/ciba/callback"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def idp(tmp_path, clock):
    provider, app, ciba = fresh_provider(tmp_path, clock)
    ciba.ping_retry_delays = (0.01, 0.01)
    yield provider, app, ciba
    await ciba.aclose()


def _agent() -> str:
    return get_settings().agent_client_id


async def _start(app, clock, **kwargs):
    client = ciba_client(app, clock)
    request = await client.start(
        ALICE,
        "Create gist notes.md",
        ["create:gist"],
        notification_token=NOTIFICATION_TOKEN,
        **kwargs,
    )
    return client, request


async def test_approval_pings_with_the_bearer_token_and_exact_body(idp, clock):
    _, app, ciba = idp
    receiver = Receiver()
    async with serve(receiver) as url:
        ciba.set_delivery(_agent(), "ping", url)
        client, request = await _start(app, clock)
        [record] = ciba.pending(ALICE)
        assert record.delivery_mode == "ping"
        assert receiver.calls == []
        ciba.decide(record.id, ALICE, approve=True)
        await ciba.flush()
    [(headers, body)] = receiver.calls
    assert headers["authorization"] == f"Bearer {NOTIFICATION_TOKEN}"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"auth_req_id": request.auth_req_id}
    granted = await client.poll(request)  # the client collects right after the ping
    assert "create:gist" in granted.scope.split()
    assert ciba.stats(record.id) == {"polls": 1, "pings": 1, "ping_attempts": 1, "ping_failures": 0}


async def test_denial_pings_too_and_the_poll_says_denied(idp, clock):
    _, app, ciba = idp
    receiver = Receiver()
    async with serve(receiver) as url:
        ciba.set_delivery(_agent(), "ping", url)
        client, request = await _start(app, clock)
        ciba.decide(request.auth_req_id, ALICE, approve=False)
        await ciba.flush()
    assert len(receiver.calls) == 1
    with pytest.raises(ApprovalDenied):
        await client.poll(request)


async def test_expiry_pings_once_from_the_sweeper(idp, clock):
    _, app, ciba = idp
    ciba.sweep_seconds = 0.02
    receiver = Receiver()
    async with serve(receiver) as url:
        ciba.set_delivery(_agent(), "ping", url)
        client, request = await _start(app, clock, requested_expiry=10)
        clock.advance(11)
        await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
        await ciba.flush()
        assert ciba.notify_expired() == 0  # already notified: never a second ping
    assert len(receiver.calls) == 1
    assert json.loads(receiver.calls[0][1]) == {"auth_req_id": request.auth_req_id}
    with pytest.raises(ApprovalExpired):
        await client.poll(request)


async def test_a_decision_from_another_thread_pings_on_the_providers_loop(idp, clock):
    _, app, ciba = idp
    receiver = Receiver()
    async with serve(receiver) as url:
        ciba.set_delivery(_agent(), "ping", url)
        _, request = await _start(app, clock)
        await asyncio.to_thread(ciba.decide, request.auth_req_id, ALICE, True)
        await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
    assert len(receiver.calls) == 1


async def test_server_errors_are_retried_and_refusals_are_not(idp, clock):
    _, app, ciba = idp
    flaky, refusing = Receiver([503]), Receiver([401])
    async with serve(flaky) as url:
        ciba.set_delivery(_agent(), "ping", url)
        _, first = await _start(app, clock)
        ciba.decide(first.auth_req_id, ALICE, approve=True)
        await ciba.flush()
    assert len(flaky.calls) == 2
    assert ciba.stats(first.auth_req_id) == {
        "polls": 0,
        "pings": 1,
        "ping_attempts": 2,
        "ping_failures": 0,
    }
    async with serve(refusing) as url:
        ciba.set_delivery(_agent(), "ping", url)
        _, second = await _start(app, clock)
        ciba.decide(second.auth_req_id, ALICE, approve=True)
        await ciba.flush()
    assert len(refusing.calls) == 1
    assert ciba.stats(second.auth_req_id)["ping_failures"] == 1


async def test_an_unreachable_endpoint_is_retried_then_given_up_without_leaking(idp, clock, caplog):
    caplog.set_level("DEBUG")
    _, app, ciba = idp
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    ciba.set_delivery(_agent(), "ping", f"http://127.0.0.1:{port}/cb?key=query-secret")
    client, request = await _start(app, clock)
    record = ciba.decide(request.auth_req_id, ALICE, approve=True)
    await ciba.flush()
    assert ciba.stats(record.id)["ping_attempts"] == 3
    assert ciba.stats(record.id)["ping_failures"] == 1
    assert NOTIFICATION_TOKEN not in caplog.text and request.auth_req_id not in caplog.text
    assert "query-secret" not in caplog.text
    assert (await client.poll(request)).access_token  # polling still works


async def test_ping_clients_must_send_a_notification_token(idp, clock):
    _, app, ciba = idp
    ciba.set_delivery(_agent(), "ping", "http://127.0.0.1:9/cb")
    client = ciba_client(app, clock)
    with pytest.raises(ProviderUnavailable, match="client_notification_token"):
        await client.start(ALICE, "Create gist", ["create:gist"])
    with pytest.raises(ProviderUnavailable, match="client_notification_token"):
        await client.start(ALICE, "Create gist", ["create:gist"], notification_token="bad token!")
    assert ciba.requests(ALICE) == []


async def test_switching_back_to_poll_stops_pings(idp, clock):
    _, app, ciba = idp
    receiver = Receiver()
    async with serve(receiver) as url:
        ciba.set_delivery(_agent(), "ping", url)
        ciba.set_delivery(_agent(), "poll")
        assert ciba.delivery(_agent()) == ("poll", url)
        _, request = await _start(app, clock)
        ciba.decide(request.auth_req_id, ALICE, approve=True)
        await ciba.flush()
    assert receiver.calls == []


def test_set_delivery_checks_its_arguments(tmp_path):
    _, _, ciba = fresh_provider(tmp_path, Clock())
    with pytest.raises(ValueError, match="endpoint"):
        ciba.set_delivery(_agent(), "ping")
    with pytest.raises(ValueError, match="endpoint"):
        ciba.set_delivery(_agent(), "ping", "ftp://example.com/x")
    with pytest.raises(ValueError, match="mode"):
        ciba.set_delivery(_agent(), "push", "http://127.0.0.1/cb")
    with pytest.raises(ValueError, match="unknown client"):
        ciba.set_delivery("nobody", "poll")


@pytest.mark.parametrize(
    ("mode", "endpoint", "expected"),
    [
        ("ping", "http://127.0.0.1:8123/ciba/callback", "ping"),
        ("ping", None, "poll"),  # ping without an endpoint cannot work: the client polls
        ("poll", None, "poll"),
    ],
)
def test_settings_configure_the_agent_client(tmp_path, mode, endpoint, expected):
    settings = get_settings().model_copy(
        update={"ciba_delivery_mode": mode, "ciba_notification_endpoint": endpoint}
    )
    provider = IdentityProvider(settings, issuer=ISSUER, data_dir=tmp_path / "idp")
    provider.load_extensions()
    ciba = provider.extensions["ciba"]
    assert ciba.delivery(settings.agent_client_id) == (expected, endpoint)


async def test_a_ping_transport_reaches_an_in_process_app_every_time(idp, clock):
    _, app, ciba = idp
    receiver = Receiver()
    callback = Starlette(routes=[Route("/ciba/callback", receiver.endpoint, methods=["POST"])])
    ciba.ping_transport = httpx.ASGITransport(app=callback)
    ciba.set_delivery(_agent(), "ping", "http://agent.invalid/ciba/callback")
    for _ in range(2):  # a set transport is the caller's: it must stay usable
        _, request = await _start(app, clock)
        ciba.decide(request.auth_req_id, ALICE, approve=True)
        await ciba.flush()
    assert len(receiver.calls) == 2
    assert all(h["authorization"] == f"Bearer {NOTIFICATION_TOKEN}" for h, _ in receiver.calls)
