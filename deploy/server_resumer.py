"""Wake a thread through the production server's own HTTP API (Aegra has no in-process client).

`ServerResumer` starts a nudge run on the approval's thread with the server's resume credential
and waits for it to end (`join`), so that the approval's wake claim is held for exactly as long
as the run: a duplicate ping, here or on another replica, does not start a second run meanwhile.
"""

from __future__ import annotations

import logging

import httpx

from auth.approvals_ledger import ApprovalRecord
from deploy.resume_credential import resume_credential
from graph.resumer import GRAPH_ID, WAKE, ResumeResult

log = logging.getLogger(__name__)
JOIN_TIMEOUT_SECONDS = 120.0


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
                    return ResumeResult.BUSY if status == "busy" else ResumeResult.GONE
                if response.status_code in (404, 422):
                    return ResumeResult.GONE
                if response.status_code != 200:
                    log.warning("resume of approval %s: HTTP %s", record.id, response.status_code)
                    return ResumeResult.FAILED
                run_id = response.json()["run_id"]
                await http.get(
                    f"{path}/{run_id}/join",
                    headers=headers,
                    timeout=JOIN_TIMEOUT_SECONDS,
                )
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("resume of approval %s failed: %s", record.id, type(exc).__name__)
            return ResumeResult.FAILED
        return ResumeResult.RESUMED
