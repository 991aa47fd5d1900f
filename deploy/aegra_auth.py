"""Warrant's server `Auth` (whatever `langgraph.json` names) adapted to Aegra 0.6.x.

Aegra calls `authenticate(headers)` with the headers only (langgraph-api injects parameters by
name), passes `@auth.on` handlers its own value shapes (flat run requests, not langgraph-api's
`kwargs`), and ignores the filters they return. This adapter:
- calls Warrant's `authenticate` as langgraph-api would, injecting by name what it asks for
  (`authorization`, byte `headers`, an ASGI `scope` with the headers);
- accepts the server's own resume credential (`deploy/resume_credential.py`) as the approval's
  user, allowed to do nothing but resume that approval's thread with a nudge;
- gives Warrant's `@auth.on` handlers the value shapes they were written for, and enforces
  what Aegra leaves out for run requests: the thread must be the caller's, and no config or
  context key may restate the server's own (`langgraph_auth_user`, which Aegra would let a
  client set and the graph would read as the caller).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from langgraph_sdk import Auth

from auth.approvals import get_ledger
from deploy.aegra_config import langgraph_entry
from deploy.resume_credential import SCHEME, InvalidResumeCredential, approval_of

warrant_auth: Auth = langgraph_entry("auth", "path")
auth = Auth()

RESUME_PERMISSION = "warrant:resume"
_RESUME_KEY = "warrant_resume"
# What Aegra itself puts in a run's `configurable`; a client that sends one is forging it.
_SERVER_KEYS = frozenset({"thread_id", "run_id", "checkpoint_id", "checkpoint_ns"})


def _http_error(status: int, detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=status, detail=detail)


async def _resume_caller(authorization: str) -> Auth.types.MinimalUserDict:
    try:
        approval_id = approval_of(authorization)
    except InvalidResumeCredential as exc:
        raise _http_error(401, str(exc)) from None
    record = await (await get_ledger()).get(approval_id)
    if record is None:
        raise _http_error(401, "the resume credential names no approval")
    user: dict[str, Any] = {
        "identity": record.user_id,
        "display_name": record.user_id,
        "email": "",
        "scopes": [],
        "permissions": [RESUME_PERMISSION],
        "is_authenticated": True,
        _RESUME_KEY: {"approval_id": record.id, "thread_id": record.thread_id},
    }
    return user  # type: ignore[return-value]


@auth.authenticate
async def authenticate(headers: dict[str, str]) -> Auth.types.MinimalUserDict:
    """The caller: a resume credential's approval user, else whatever Warrant's `authenticate`
    makes of the request (a validated bearer JWT, or Studio when enabled)."""
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    authorization = lowered.get("authorization")
    if authorization and authorization.strip().startswith(SCHEME + " "):
        return await _resume_caller(authorization)
    handler = warrant_auth._authenticate_handler
    if handler is None:  # pragma: no cover - Warrant's Auth always authenticates
        raise _http_error(401, "no authentication configured")
    return await handler(**_injected(handler, lowered, authorization))


def _injected(handler: Any, lowered: dict[str, str], authorization: str | None) -> dict[str, Any]:
    """The arguments langgraph-api would inject by name, from what Aegra gives (the headers).

    Aegra has already folded repeated headers into one and decoded them; the raw forms are
    rebuilt from that, so a handler reading the ASGI `scope` sees one value per header.
    """
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in lowered.items()]
    available: dict[str, Any] = {
        "authorization": authorization,
        "headers": dict(raw),
        "scope": {"type": "http", "headers": raw},
    }
    names = inspect.signature(handler).parameters
    missing = [name for name in names if name not in available]
    if missing:
        raise _http_error(401, f"authentication needs {', '.join(missing)}, which Aegra omits")
    return {name: available[name] for name in names}


def resume_of(user: Any) -> dict[str, str] | None:
    """The approval a resume caller may wake (None for every other caller)."""
    permissions = getattr(user, "permissions", None) or []
    found = getattr(user, _RESUME_KEY, None)
    if RESUME_PERMISSION in permissions and isinstance(found, dict):
        return found
    return None


def _is_nudge(value: dict[str, Any], approval_id: str) -> bool:
    command = value.get("command")
    resume = command.get("resume") if isinstance(command, dict) else None
    return (
        isinstance(command, dict)
        and set(command) <= {"resume", "update", "goto"}
        and not command.get("update")
        and not command.get("goto")
        and resume == {"wake": True, "approval_id": approval_id}
        and not value.get("input")
        and not value.get("checkpoint")
        and not (value.get("config") or {}).get("configurable")
        and not value.get("context")
    )


def _authorize_resume(ctx: Auth.types.AuthContext, value: dict[str, Any], resume: dict) -> None:
    """A resume caller may read its thread and start one nudge run on it; nothing else."""
    same_thread = str(value.get("thread_id")) == resume["thread_id"]
    if (ctx.resource, ctx.action) in (("threads", "read"), ("runs", "read")) and same_thread:
        return
    if (ctx.resource, ctx.action) == ("threads", "create_run") and same_thread:
        if _is_nudge(value, resume["approval_id"]):
            return
    raise _http_error(403, "a resume credential only wakes its own approval's thread")


def _handler(resource: str, action: str) -> Any:
    """Warrant's most specific handler, in langgraph-api's order of precedence."""
    for key in ((resource, action), (resource, "*"), ("*", action), ("*", "*")):
        found = warrant_auth._handlers.get(key)
        if found:
            return found[-1]
    return warrant_auth._global_handlers[-1] if warrant_auth._global_handlers else None


def run_request_kwargs(value: dict[str, Any]) -> dict[str, Any]:
    """Aegra's flat run request as langgraph-api's `kwargs` (what Warrant's handlers read):
    Aegra merges `checkpoint` into `configurable` and a `configurable` into the context."""
    config = copy.deepcopy(value.get("config") or {})
    configurable = dict(config.get("configurable") or {})
    checkpoint = value.get("checkpoint") or {}
    if isinstance(checkpoint, dict):
        configurable.update({k: v for k, v in checkpoint.items() if v is not None})
    config["configurable"] = configurable
    context = value.get("context") or {
        k: v for k, v in configurable.items() if k not in _SERVER_KEYS
    }
    return {
        "input": value.get("input"),
        "command": value.get("command"),
        "config": config,
        "context": context,
    }


def _forged_keys(value: dict[str, Any]) -> list[str]:
    """Keys of the run's `configurable` and `context` that only the server may set."""
    found: set[str] = set()
    for part in ((value.get("config") or {}).get("configurable"), value.get("context")):
        if part is None:
            continue
        if not isinstance(part, dict):
            return ["configurable/context (not an object)"]
        forged = _SERVER_KEYS - {"checkpoint_id"}  # checkpoint_id: Warrant's handler says why
        found |= {k for k in part if str(k).startswith(("langgraph_", "__")) or k in forged}
    return sorted(found)


async def thread_owner(thread_id: str) -> str | None:
    """Who owns the thread in Aegra's database (None: no such thread yet)."""
    from aegra_api.core.orm import Thread, _get_session_maker
    from sqlalchemy import select

    async with _get_session_maker()() as session:
        return await session.scalar(select(Thread.user_id).where(Thread.thread_id == thread_id))


async def authorize_run(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    """Everything a run request must pass on Aegra (also used for the routes Aegra does not
    authorize at all, `runs/wait` and `runs/stream`: see `deploy/run_guard.py`)."""
    resume = resume_of(ctx.user)
    if resume is not None:
        _authorize_resume(ctx, value, resume)
        return
    forged = _forged_keys(value)
    if forged:
        raise _http_error(403, f"A run may not set server keys ({', '.join(forged)}).")
    thread_id = value.get("thread_id")
    if thread_id is not None:
        owner = await thread_owner(str(thread_id))
        if owner is not None and owner != getattr(ctx.user, "identity", None):
            raise _http_error(404, f"Thread '{thread_id}' not found")
    handler = _handler("threads", "create_run")
    shaped = {
        "thread_id": thread_id,
        "assistant_id": value.get("assistant_id"),
        "metadata": dict(value.get("metadata") or {}),
        "kwargs": run_request_kwargs(value),
    }
    await handler(ctx=ctx, value=shaped)


@auth.on
async def authorize(ctx: Auth.types.AuthContext, value: Any) -> Any:
    """Every Aegra authorization event, answered by Warrant's handlers (translated)."""
    value = value if isinstance(value, dict) else {}
    if (ctx.resource, ctx.action) == ("threads", "create_run"):
        await authorize_run(ctx, value)
        return None
    resume = resume_of(ctx.user)
    if resume is not None:
        _authorize_resume(ctx, value, resume)
        return None
    handler = _handler(ctx.resource, ctx.action)
    if handler is None:
        raise _http_error(403, f"'{ctx.resource}.{ctx.action}' is not allowed.")
    result = await handler(ctx=ctx, value=value)
    # Aegra applies no filters (it scopes every read by the caller's identity itself); a
    # handler's False or exception is what refuses.
    return False if result is False else None
