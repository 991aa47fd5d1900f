"""An ASGI guard for the Aegra routes that skip the server's `Auth` handlers in 0.6.x.

Aegra authorizes `POST /threads/{id}/runs` through `@auth.on.threads.create_run`, but not
`/runs/wait` nor `/runs/stream`, and applies no handler to state edits
(`POST /threads/{id}/state` with values). This guard runs the same authorization for the run
routes and refuses state edits, and keeps the server's resume credential to the three routes
a wake needs. Everything else passes untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langgraph_sdk import Auth
from langgraph_sdk.auth.types import AuthContext
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deploy.aegra_auth import authenticate, authorize_run
from deploy.resume_credential import SCHEME

_RUN_ROUTE = re.compile(r"^/threads/([^/]+)/runs/(wait|stream)$")
_STATE_EDIT = re.compile(r"^/threads/([^/]+)/state$")
_RESUME_ROUTES = (
    re.compile(r"^POST /threads/[^/]+/runs$"),
    re.compile(r"^GET /threads/[^/]+$"),
    re.compile(r"^GET /threads/[^/]+/runs/[^/]+/join$"),
)
MAX_BODY = 1_000_000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": "forbidden" if status == 403 else "error", "message": message}, status_code=status
    )


class RunGuard:
    """Authorize run requests on every route that starts a run; refuse state edits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("authorization", "").strip().startswith(SCHEME + " ") and not any(
            route.match(f"{method} {path}") for route in _RESUME_ROUTES
        ):
            await _error(403, "a resume credential only wakes a thread")(scope, receive, send)
            return
        run = _RUN_ROUTE.match(path) if method == "POST" else None
        edit = _STATE_EDIT.match(path) if method == "POST" else None
        if run is None and edit is None:
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            await _error(422, "the request body is not JSON")(scope, receive, send)
            return
        if not isinstance(value, dict):
            await _error(422, "the request body is not a JSON object")(scope, receive, send)
            return
        if edit is not None and value.get("values") is not None:
            await _error(403, "Editing a thread's state is not allowed.")(scope, receive, send)
            return
        if run is not None:
            refusal = await _authorize(headers, {**value, "thread_id": run.group(1)})
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


async def _authorize(headers: dict[str, str], value: dict[str, Any]) -> JSONResponse | None:
    from aegra_api.models.auth import User

    try:
        user = User(**await authenticate(headers))
        ctx = AuthContext(
            user=user,  # type: ignore[arg-type]
            resource="threads",
            action="create_run",
            permissions=list(user.permissions or []),
        )
        await authorize_run(ctx, value)
    except Auth.exceptions.HTTPException as exc:
        return _error(exc.status_code, str(exc.detail))
    return None


async def _read(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY or not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
