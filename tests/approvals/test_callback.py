"""The ping callback route: only the provider's exact notification token for a known request
wakes a thread, and waking is all it does (it never learns or records a decision)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from auth.approvals import check_notification_token, close_all, get_ledger, notification_token
from auth.approvals_ledger import ApprovalRecord, ApprovalStatus
from graph.callbacks import CALLBACK_PATH, routes
from graph.resumer import ResumeResult, set_resumer
from settings import get_settings
from tests.approvals.pending import pending_approval


class RecordingResumer:
    """Counts wakes instead of resuming anything; can pretend the thread is busy."""

    def __init__(self, busy_times: int = 0) -> None:
        self.woken: list[str] = []
        self.busy_times = busy_times

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        if self.busy_times:
            self.busy_times -= 1
            return ResumeResult.BUSY
        self.woken.append(record.id)
        return ResumeResult.RESUMED


@pytest.fixture
async def env(tmp_path) -> AsyncIterator[tuple[httpx.AsyncClient, RecordingResumer]]:
    resumer = RecordingResumer()
    with get_settings.override(approvals_db=str(tmp_path / "ledger.sqlite3")):
        set_resumer(resumer)
        app = Starlette(routes=routes)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
                yield http, resumer
        finally:
            set_resumer(None)
            await close_all()


async def _pending(auth_req_id: str | None = None) -> ApprovalRecord:
    ledger = await get_ledger()
    return await pending_approval(
        ledger,
        user_id="auth0|alice",
        thread_id=f"t-{uuid.uuid4().hex[:6]}",
        tool_call_id="call_1",
        binding_message="Create public gist a.md #dddddd",
        auth_req_id=auth_req_id or uuid.uuid4().hex,
    )


def _ping(http: httpx.AsyncClient, auth_req_id: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http.post(CALLBACK_PATH, json={"auth_req_id": auth_req_id}, headers=headers)


async def test_the_right_token_wakes_the_thread_once_and_marks_it_due(env) -> None:
    http, resumer = env
    record = await _pending()
    assert record.next_poll_at > time.time() + 4
    response = await _ping(http, record.auth_req_id, notification_token(record.id))
    assert response.status_code == 204 and response.content == b""
    assert resumer.woken == [record.id]
    after = await (await get_ledger()).get(record.id)
    assert after.status is ApprovalStatus.PENDING  # a ping is not a decision
    assert after.next_poll_at <= time.time()  # due: the woken node may poll right away


@pytest.mark.parametrize(
    "token",
    [None, "", "wrong", "0" * 64, "Basic x"],
    ids=["missing", "empty", "wrong", "same-shape", "basic"],
)
async def test_a_missing_or_wrong_token_is_401_and_wakes_nothing(env, token) -> None:
    http, resumer = env
    record = await _pending()
    if token == "Basic x":
        response = await http.post(
            CALLBACK_PATH,
            json={"auth_req_id": record.auth_req_id},
            headers={"Authorization": f"Basic {notification_token(record.id)}"},
        )
    else:
        response = await _ping(http, record.auth_req_id, token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert resumer.woken == []
    assert (await (await get_ledger()).get(record.id)).next_poll_at == record.next_poll_at


async def test_another_requests_token_is_refused(env) -> None:
    http, resumer = env
    mine, other = await _pending(), await _pending()
    response = await _ping(http, mine.auth_req_id, notification_token(other.id))
    assert response.status_code == 401 and resumer.woken == []


async def test_unknown_auth_req_id_is_404_and_wakes_nothing(env) -> None:
    http, resumer = env
    record = await _pending()
    response = await _ping(http, "no-such-" + uuid.uuid4().hex, notification_token(record.id))
    assert response.status_code == 404 and resumer.woken == []


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b"{}", b'{"auth_req_id": 7}', b'{"auth_req_id": ""}']
)
async def test_malformed_notifications_are_400(env, body) -> None:
    http, resumer = env
    record = await _pending()
    response = await http.post(
        CALLBACK_PATH,
        content=body,
        headers={
            "Authorization": f"Bearer {notification_token(record.id)}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400 and resumer.woken == []


async def test_a_replay_after_the_decision_was_collected_wakes_nothing(env) -> None:
    http, resumer = env
    record = await _pending()
    ledger = await get_ledger()
    assert await ledger.transition(record.id, ApprovalStatus.DENIED, outcome="denied")
    response = await _ping(http, record.auth_req_id, notification_token(record.id))
    assert response.status_code == 204 and resumer.woken == []


async def test_a_busy_thread_is_retried_until_it_can_be_woken(env) -> None:
    http, resumer = env
    resumer.busy_times = 2  # the run that pushed the request has not paused yet
    record = await _pending()
    response = await _ping(http, record.auth_req_id, notification_token(record.id))
    assert response.status_code == 204
    assert resumer.woken == [record.id]


def test_notification_tokens_are_per_request_and_keyed() -> None:
    a, b = notification_token("approval-a"), notification_token("approval-b")
    assert a != b and len(a) == 64
    assert check_notification_token("approval-a", a)
    assert not check_notification_token("approval-a", b)
    assert not check_notification_token("approval-a", None)
    with get_settings.override(ciba_notification_token="another-server-key"):
        assert notification_token("approval-a") != a
        assert not check_notification_token("approval-a", a)
