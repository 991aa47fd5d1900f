"""The CIBA ping callback (`POST /warrant/ciba/callback`), mounted into the LangGraph server.

The provider POSTs `{"auth_req_id": ...}` with `Authorization: Bearer <client_notification_token>`
when the user has answered. The route checks the token against the one sent with that request
(recomputed from the ledger record, compared in constant time: 401 otherwise), answers 204, then
marks the request due and wakes its thread. It never learns the decision and never touches a
token endpoint: the resumed `approval` node collects the decision from the provider itself.

Also exports `lifespan`: the approval poller runs for as long as the server does.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from auth.approvals import check_notification_token, get_ledger
from auth.approvals_ledger import ApprovalRecord, ApprovalStatus
from graph.resumer import poller_lifespan, wake

log = logging.getLogger(__name__)

CALLBACK_PATH = "/warrant/ciba/callback"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="warrant-ciba"'}
MAX_BODY = 4096


def _error(status: int, error: str, description: str) -> JSONResponse:
    headers = _CHALLENGE if status == 401 else None
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


async def _wake(record: ApprovalRecord) -> None:
    try:
        result = await wake(record)
        log.info("ping for approval %s: thread %s", record.id, result.value)
    except Exception as exc:  # after the 204: a failure is logged; the poller is the safety net
        log.warning("ping for approval %s: waking failed: %s", record.id, type(exc).__name__)


async def ciba_callback(request: Request) -> Response:
    """Check the ping, answer 204, and wake the thread in the background."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error(401, "invalid_token", "A bearer notification token is required.")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _error(400, "invalid_request", "The notification is too large.")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # nesting past the interpreter's recursion limit
        return _error(400, "invalid_request", "The notification is not JSON.")
    auth_req_id = body.get("auth_req_id") if isinstance(body, dict) else None
    if not isinstance(auth_req_id, str) or not auth_req_id or len(auth_req_id) > 512:
        return _error(400, "invalid_request", "The notification has no auth_req_id.")
    ledger = await get_ledger()
    record = await ledger.find_by_auth_req_id(auth_req_id)
    if record is None:
        log.info("ping for an unknown auth_req_id: ignored")
        return _error(404, "not_found", "No approval request with this auth_req_id.")
    if not check_notification_token(record.id, token):
        log.warning("ping for approval %s with a wrong notification token: refused", record.id)
        return _error(401, "invalid_token", "The notification token is not valid.")
    if record.status is not ApprovalStatus.PENDING:
        return Response(status_code=204)  # a replay: the decision was already collected
    # Due now: whichever wakes the thread first (this ping, the poller), the node polls.
    await ledger.set_interval(record.id, record.poll_interval, time.time())
    return Response(status_code=204, background=BackgroundTask(_wake, record))


routes: list[BaseRoute] = [Route(CALLBACK_PATH, ciba_callback, methods=["POST"])]
lifespan = poller_lifespan
