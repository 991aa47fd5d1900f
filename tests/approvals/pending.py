"""A pending approval request in a ledger, as a test needs one: reserved, then sent (it has an
`auth_req_id`), so the poller, wakes, claims and the callback can find it."""

from __future__ import annotations

import time

from auth.approvals_ledger import ApprovalRecord, ApprovalsLedger


async def pending_approval(
    ledger: ApprovalsLedger,
    *,
    thread_id: str,
    user_id: str = "user-1",
    tool_call_id: str = "call-1",
    binding_message: str = "Create public gist x.md",
    digest: str = "d" * 64,
    auth_req_id: str | None = None,
    expires_at: float | None = None,
    interval: float = 5.0,
) -> ApprovalRecord:
    """A fresh record (`auth_req_id` defaults to `req-<id>`, expiry to five minutes ahead)."""
    record, fresh = await ledger.reserve(
        user_id=user_id,
        thread_id=thread_id,
        tool_call_id=tool_call_id,
        tool_name="create_public_gist",
        action_digest=digest,
        binding_message=binding_message,
    )
    assert fresh, "a test's pending approval must be a new record"
    return await ledger.attach_request(
        record.id,
        auth_req_id=auth_req_id or f"req-{record.id}",
        expires_at=time.time() + 300 if expires_at is None else expires_at,
        interval=interval,
    )
