"""Wake a thread through the production server's own HTTP API (Aegra has no in-process client).

`ServerResumer` starts a nudge run on the approval's thread with the server's resume credential,
then waits, on the ledger, until the node has asked the provider (the record settles, or the node
pushed its next check forward): for that long the wake claim stays held, and a duplicate ping,
here or on another replica, is answered at once instead of hammering a busy thread. It does not
use Aegra's `join`, which holds one of Aegra's pooled connections for as long as it waits.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from auth.approvals import get_ledger
from auth.approvals_ledger import ApprovalRecord, ApprovalStatus
from deploy.resume_credential import resume_credential
from graph.resumer import GRAPH_ID, WAKE, ResumeResult

log = logging.getLogger(__name__)
# A woken run that has not reached the provider by then (a slow server) no longer holds the claim.
NODE_WAIT_SECONDS = 30.0


class ServerResumer:
    """Resume threads through the server at `url` (this process's own address)."""

    def __init__(
        self,
        url: str,
        *,
        assistant_id: str = GRAPH_ID,
        timeout: float = 30.0,
        node_wait: float = NODE_WAIT_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self.assistant_id = assistant_id
        self._timeout = timeout
        self._node_wait = node_wait

    async def _status(self, http: httpx.AsyncClient, record: ApprovalRecord, headers: dict) -> str:
        response = await http.get(f"{self.url}/threads/{record.thread_id}", headers=headers)
        return str(response.json().get("status")) if response.status_code == 200 else "gone"

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        headers = {"Authorization": resume_credential(record.id)}
        body = {
            "assistant_id": self.assistant_id,
            "command": {"resume": {**WAKE, "approval_id": record.id}},
            "multitask_strategy": "reject",  # ignored by Aegra 0.6; the wake claim does it
        }
        path = f"{self.url}/threads/{record.thread_id}/runs"
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                response = await http.post(path, json=body, headers=headers)
                if response.status_code in (400, 409):
                    # Aegra answers 400 when the thread is not interrupted: running, or done.
                    status = await self._status(http, record, headers)
                    if status == "busy":
                        return ResumeResult.BUSY
                    # `error`: a run failed, the checkpoint may still wait; keep retrying.
                    return ResumeResult.FAILED if status == "error" else ResumeResult.GONE
                if response.status_code in (404, 422):
                    return ResumeResult.GONE
                if response.status_code != 200:
                    log.warning("resume of approval %s: HTTP %s", record.id, response.status_code)
                    return ResumeResult.FAILED
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("resume of approval %s failed: %s", record.id, type(exc).__name__)
            return ResumeResult.FAILED
        await self._until_node_asked(record)
        return ResumeResult.RESUMED

    async def _until_node_asked(self, record: ApprovalRecord) -> None:
        """Until the woken node has polled (or `node_wait` seconds pass): the record is no
        longer pending, or its next check lies in the future (a ping only ever pulls it in)."""
        ledger = await get_ledger()
        deadline = time.monotonic() + self._node_wait
        pause = 0.05
        while time.monotonic() < deadline:
            current = await ledger.get(record.id)
            if (
                current is None
                or current.status is not ApprovalStatus.PENDING
                or (current.next_poll_at or 0.0) > time.time()
            ):
                return
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.5)
