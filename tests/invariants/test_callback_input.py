"""Malformed pings at the CIBA callback beyond the basic ones: deep nesting, bad UTF-8, odd
headers, oversize ids, a body padded to the limit. Each gets a 4xx, never a 500, wakes nothing,
and the request it names stays pending and usable."""

from __future__ import annotations

import pytest

from auth.approvals import get_ledger, notification_token
from auth.approvals_ledger import ApprovalStatus
from graph.callbacks import CALLBACK_PATH, MAX_BODY
from tests.approvals.test_callback import _pending, env  # noqa: F401 (fixture)

BODIES = {
    "deep-array": b"[" * 2000 + b"]" * 2000,
    "deep-object": b'{"a":' * 1300 + b"1" + b"}" * 1300,
    "bad-utf8": b'{"auth_req_id": "\xff\xfe"}',
    "nul": b'{"auth_req_id": "\\u0000"}',
    "list-id": b'{"auth_req_id": ["x"]}',
    "huge-number": b'{"auth_req_id": 1e999999}',
    "too-big": b'{"auth_req_id": "' + b"x" * MAX_BODY + b'"}',
    "null": b"null",
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
async def test_malformed_bodies_are_4xx_and_wake_nothing(env, body) -> None:  # noqa: F811
    http, resumer = env
    record = await _pending()
    response = await http.post(
        CALLBACK_PATH,
        content=body,
        headers={"Authorization": f"Bearer {notification_token(record.id)}"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert resumer.woken == []
    assert (await (await get_ledger()).get(record.id)).status is ApprovalStatus.PENDING


@pytest.mark.parametrize(
    "header",
    [
        "Basic {token}",
        "Bearer",
        "Bearer  ",
        "bearer {token}x",
        "Bearer {token}\u00e9",
        "Bearer " + "x" * 10_000,
    ],
)
async def test_odd_authorization_headers_are_401_and_wake_nothing(env, header) -> None:  # noqa: F811
    http, resumer = env
    record = await _pending()
    value = header.format(token=notification_token(record.id)).encode()
    response = await http.post(
        CALLBACK_PATH,
        json={"auth_req_id": record.auth_req_id},
        headers=[(b"authorization", value)],
    )
    assert response.status_code == 401, response.text
    assert resumer.woken == []
    # The real ping still works afterwards.
    ok = await http.post(
        CALLBACK_PATH,
        json={"auth_req_id": record.auth_req_id},
        headers={"Authorization": f"Bearer {notification_token(record.id)}"},
    )
    assert ok.status_code == 204


async def test_nesting_past_the_recursion_limit_is_a_400(env, monkeypatch) -> None:  # noqa: F811
    # Whether 2,000 levels exceed the limit depends on what raised it earlier in the process;
    # the parser's RecursionError itself must be a 400, whatever the limit is.
    import graph.callbacks as callbacks

    def too_deep(raw):
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    monkeypatch.setattr(callbacks.json, "loads", too_deep)
    http, resumer = env
    record = await _pending()
    response = await http.post(
        CALLBACK_PATH,
        content=BODIES["deep-array"],
        headers={"Authorization": f"Bearer {notification_token(record.id)}"},
    )
    assert response.status_code == 400, response.text
    assert resumer.woken == []
    assert (await (await get_ledger()).get(record.id)).status is ApprovalStatus.PENDING
