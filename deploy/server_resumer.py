"""Wake a thread through the production server's own HTTP API (Aegra has no in-process client).

`ServerResumer` starts a nudge run on the approval's thread with the server's resume credential.
It does not wait for the run (Aegra's `join` holds a database connection for as long as it
waits, which starves its pool under load): once Aegra has accepted the run the thread is `busy`,
and Aegra refuses to resume a busy thread, so a duplicate ping that wakes after the claim is
released gets BUSY and retries until the thread waits again or the approval is settled.
"""

from __future__ import annotations

import logging

import httpx

from auth.approvals_ledger import ApprovalRecord
from deploy.resume_credential import resume_credential
from graph.resumer import GRAPH_ID, WAKE, ResumeResult

log = logging.getLogger(__name__)


class ServerResumer:
    """Resume threads through the server at `url` (this process's own address)."""

    def __init__(self, url: str, *, assistant_id: str = GRAPH_ID, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.assistant_id = assistant_id
        self._timeout = timeout

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
        return ResumeResult.RESUMED
