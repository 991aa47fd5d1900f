"""The approval node's first question: does a standing approval already cover this call?

If one does (and FGA, its limits and its counter agree), the call runs now, without a new CIBA
request, and the use is counted and audited; a call it covered once is never run again. If none
does, or it is spent, expired or revoked, the node asks the user as it always did.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.errors import GraphInterrupt
from langgraph.runtime import Runtime

from auth.audit import note_action
from auth.standing_approvals import StandingApprovals, open_standing_approvals
from graph.context import Context
from graph.state import ActingUser

log = logging.getLogger(__name__)


async def run_under_standing_approval(
    tool: BaseTool,
    call: ToolCall,
    key: str,
    user: ActingUser,
    thread_id: str,
    digest: str,
    runtime: Runtime[Context] | None,
) -> dict[str, list[ToolMessage]] | None:
    """The tool's answer when a standing approval covered the call; None to ask with CIBA."""
    from graph.nodes.tools import error_message, execute_tool_call

    email = user.get("email")
    if not email:
        return None  # no FGA user to hold a standing approval: ask every time
    try:
        store = await _store()
    except Exception as exc:
        log.warning("standing approvals unavailable: %s", type(exc).__name__)
        return None
    try:
        use = await store.use(
            user_id=user["sub"],
            fga_user=f"user:{email.lower()}",
            thread_id=thread_id,
            tool_call_id=key,
            tool_name=tool.name,
            action_digest=digest,
        )
    except Exception as exc:  # no use was taken: ask the user instead
        log.warning("standing approval check failed: %s", type(exc).__name__)
        return None
    if use.status == "none":
        return None
    if use.status != "claimed":
        text = (
            f"This {tool.name} call already ran under your standing approval; it is not run twice."
        )
        return {"messages": [error_message(call, text)]}
    # From here the use is spent: whatever happens, this call never runs again.
    try:
        message = await execute_tool_call(tool, call, user, _runtime(runtime))
    except GraphInterrupt:
        message = error_message(
            call,
            f"Your standing approval covered {tool.name}, but your account connection is "
            "missing now; nothing was done. Connect the account and ask again.",
        )
    except Exception as exc:
        log.warning("tool %s under a standing approval failed: %s", tool.name, exc)
        message = error_message(call, f"The {tool.name} tool failed ({type(exc).__name__}).")
    ok = message.status != "error"
    try:
        await store.finish(user_id=user["sub"], thread_id=thread_id, tool_call_id=key, ok=ok)
    except Exception as exc:  # the row stays `executing`, which never runs again
        log.warning("standing approval: recording the outcome failed: %s", exc)
    await note_action(tool.name, call.get("args"), user["sub"], ran=ok, reason=_why(use))
    standing = use.standing
    if standing is not None and ok:
        left = standing.max_uses - standing.used
        message.content = (
            f"{message.content}\n(Under your standing approval: {left} of "
            f"{standing.max_uses} left.)"
        )
    return {"messages": [message]}


_stores: dict[tuple[int, str], StandingApprovals] = {}


async def _store() -> StandingApprovals:
    """One store per event loop and location (opening SQLite or a pool blocks, and is slow)."""
    from settings import get_settings

    s = get_settings()
    key = (id(asyncio.get_running_loop()), s.approvals_db or str(s.data_dir))
    found = _stores.get(key)
    if found is None:
        found = _stores[key] = await asyncio.to_thread(open_standing_approvals)
    return found


def _why(use: Any) -> str:
    return f"standing approval {use.standing.id}" if use.standing else "standing approval"


def _runtime(runtime: Runtime[Context] | None) -> Any:
    return runtime if runtime is not None else Runtime(context=Context(user_id=""))


async def verify_parties(granted: Any, user_id: str, tool: BaseTool) -> str | None:
    """The approval grant's token names this user and (if it names one) this agent; its
    audience is the one the tool's approval asked for."""
    from auth.act_claims import verify_grant_parties
    from tools.base import requirements_of

    need = requirements_of(tool).approval
    audience = (need.audience if need is not None else None) or None
    return await verify_grant_parties(granted, user_id, tool=tool.name, audience=audience)
