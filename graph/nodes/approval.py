"""The `approval` node: a tool that changes the world runs only after the user approves it (CIBA).

For the first pending call routed here (a tool that declares an `ApprovalRequirement`):
1. the call is bound to one action (user, thread, tool call id, a digest of its arguments) and
   reserved in the approvals ledger, so a re-run, a resume or a restarted process never pushes a
   second request for the same call;
2. the one caller that reserved it pushes the request to the identity provider (`/bc-authorize`)
   and the node interrupts with `{"type": "approval_pending", ...}`;
3. on any resume the node asks the ledger, then the provider (the token endpoint, respecting
   the provider's interval; a ping marks a request due): still pending -> interrupt again;
   approved (an ID token proves it: `CIBAClient.verify_grant`) -> `claim_execution` (approved
   -> executing, exactly once) and run the tool with the approval's token; denied, expired,
   unverified, provider down -> a ToolMessage saying nothing was done.
4. an approved run whose outcome is unknown (GitHub silent after the request was sent, or a
   record a crash left `executing`) is reconciled: the tool wrote its approval's marker into
   what it created, and its reconciler looks for it: `done` with the result, `failed` when it
   is certainly absent, "unknown" (still `executing`, never run again) when it cannot tell.

A plain-Python run that names nobody (no server, no context) is refused outright: it could be
anyone, so it may neither cancel the owner's request nor be shown it.

The resume value never decides anything except a cancel (doing less). The ledger, not local
variables, is the memory: LangGraph re-runs a node from its top on every resume. Each node visit
interrupts at most once; "still pending" answers no message, so the router brings the graph
back here for a fresh visit (and a fresh interrupt), which keeps one provider poll per resume.

Only this node ever redeems a grant (polls the token endpoint): the ping callback and the poller
only wake the thread. The tokens a grant returns live in local variables for one tool call and
never reach state, the ledger, messages or logs.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphInterrupt
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel

from auth.approvals import (
    delivery_mode,
    get_ciba_client,
    get_ledger,
    next_check_at,
    notification_token,
    request_of,
)
from auth.approvals_ledger import (
    ApprovalRecord,
    ApprovalsLedger,
    ApprovalStatus,
    LedgerError,
    action_digest,
)
from auth.ciba import (
    ApprovalGranted,
    ApprovalUnverified,
    authorization_details,
    binding_message,
    request_code,
)
from auth.errors import (
    ApprovalDenied,
    ApprovalExpired,
    ApprovalPending,
    AuthError,
    ConnectionRequired,
    LoginRequired,
    ProviderUnavailable,
)
from auth.token_vault import SUBJECT_TOKEN_TYPE_ACCESS, get_token_vault
from graph.context import Context
from graph.identity import NoIdentity, acting_user, caller_identity, subject_token_for
from graph.nodes.tools import (
    connection_interrupt,
    error_message,
    execute_tool_call,
    is_cancel,
    validate_arguments,
)
from graph.routing import toolset_or_default
from graph.standing import run_under_standing_approval, verify_parties
from graph.state import ActingUser, State
from graph.toolset import Toolset
from settings import get_settings
from tools.approved_action import (
    ApprovedAction,
    Reconciler,
    approval_marker,
    approved_action_scope,
    reconciler_for,
)
from tools.base import ApprovalRequirement, ToolCredentials, credentials_scope, requirements_of

log = logging.getLogger(__name__)

# A reservation without an auth_req_id older than this was cut off mid-push (a crash): failing
# it is the only way to keep "never a second push" (the provider may have accepted the first).
STALE_PUSH_SECONDS = 30.0
# A resume this close to the next allowed poll counts as due (clock jitter, ping races).
DUE_SLACK_SECONDS = 0.25
OUTCOME_CHARS = 500
# How long a run that got `invalid_grant` waits for a concurrent run's redemption to show.
REDEEM_GRACE_SECONDS = 2.0
# A record `approved` or `executing` for longer than this was cut off (a crash): no run takes
# this long (GitHub's and the provider's timeouts are seconds), so it is recovered, not waited on.
STALE_EXECUTION_SECONDS = 120.0
# Checking whether an action whose answer was lost took effect: a few looks, a moment apart
# (a listing may lag a creation).
RECONCILE_ATTEMPTS = 3
RECONCILE_DELAY_SECONDS = 1.0


def _ledger_failures() -> tuple[type[BaseException], ...]:
    """What an unreachable or unwritable ledger raises (SQLite, the file system, PostgreSQL)."""
    found: list[type[BaseException]] = [sqlite3.Error, OSError]
    try:
        import psycopg

        found.append(psycopg.Error)
    except ImportError:  # pragma: no cover - psycopg is a dependency, but only the URL needs it
        pass
    return tuple(found)


LEDGER_FAILURES = _ledger_failures()


def _again() -> dict[str, list[ToolMessage]]:
    """No answer yet ("still pending"): the router brings the graph back for a fresh visit."""
    return {"messages": []}


def _validated_arguments(tool: BaseTool, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments with the schema's defaults filled in: what the tool will actually run with."""
    schema = tool.args_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_validate(args).model_dump(mode="json")
    return dict(args)


def _binding_text(need: ApprovalRequirement, tool: BaseTool, args: dict[str, Any]) -> str:
    """The requirement's template over the arguments; a generic text if it does not fit."""
    try:
        return need.binding_message.format(**{**args, "tool": tool.name})
    except (KeyError, IndexError, ValueError, AttributeError):
        return f"Approve {tool.name}"


def _summary(args: dict[str, Any]) -> dict[str, Any]:
    """What the approvals page shows of the arguments (long texts shortened)."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        text = value if isinstance(value, str) else str(value)
        out[key] = text if len(text) <= 200 else text[:197] + "..."
    return out


def _pending_payload(
    record: ApprovalRecord, tool: BaseTool, args: dict[str, Any]
) -> dict[str, Any]:
    expires = record.expires_at
    when = time.strftime("%H:%M:%S UTC", time.gmtime(expires)) if expires else None
    return {
        "type": "approval_pending",
        "approval_id": record.id,
        "binding_message": record.binding_message,
        "expires_at": expires,
        "tool": tool.name,
        # exactly what would run (the digest in the binding message is over these)
        "arguments": args,
        "action_digest": record.action_digest,
        "message": (
            f"Approve '{record.binding_message}' on your authenticator"
            + (f" before {when}." if when else ".")
        ),
    }


def settled_message(call: ToolCall, record: ApprovalRecord) -> ToolMessage | None:
    """The answer the ledger already holds for this call, or None while it is pending."""
    status = record.status
    what = f"'{record.binding_message}'"
    if status is ApprovalStatus.PENDING:
        return None
    if status is ApprovalStatus.DONE:
        return ToolMessage(
            content=f"Already done once (approved): {record.outcome or 'completed'}. "
            "It will not run again.",
            tool_call_id=call["id"] or "",
            name=call.get("name"),
        )
    if status in (ApprovalStatus.APPROVED, ApprovalStatus.EXECUTING):
        return error_message(
            call,
            f"The approved action {what} is already being carried out (or was cut off while "
            "running); it will not run a second time.",
        )
    if status is ApprovalStatus.DENIED:
        return error_message(call, f"You denied {what} on your authenticator; nothing was done.")
    if status is ApprovalStatus.EXPIRED:
        return error_message(
            call, f"The approval request {what} expired before you answered; nothing was done."
        )
    return error_message(
        call, f"The approval for {what} did not go through ({record.outcome}); nothing was done."
    )


async def _settled_or(
    ledger: ApprovalsLedger, call: ToolCall, approval_id: str, fallback: ToolMessage
) -> ToolMessage:
    """Someone else moved the record first: what the ledger says they did, else `fallback`."""
    current = await ledger.get(approval_id)
    settled = settled_message(call, current) if current is not None else None
    return settled or fallback


async def _settle(
    ledger: ApprovalsLedger,
    call: ToolCall,
    record: ApprovalRecord,
    to: ApprovalStatus,
    outcome: str,
    message: ToolMessage,
) -> dict[str, list[ToolMessage]]:
    """Move a pending record to a final state; if someone else moved it first, say what they did."""
    if await ledger.transition(record.id, to, expected=ApprovalStatus.PENDING, outcome=outcome):
        return {"messages": [message]}
    return {"messages": [await _settled_or(ledger, call, record.id, message)]}


def _subject(
    user: ActingUser, runtime: Runtime[Context] | None, granted: ApprovalGranted | None
) -> tuple[str, str] | None:
    """The user's own token for the Token Vault: the caller's, the server store's, or the
    approval's (a resume from a callback carries no user token; the grant is the user's)."""
    found = subject_token_for(user, runtime)
    if found is None and granted is not None:
        return granted.access_token, SUBJECT_TOKEN_TYPE_ACCESS
    return found


def _runtime_with(
    runtime: Runtime[Context] | None, user: ActingUser, subject: tuple[str, str] | None
) -> Runtime[Context]:
    context = Context(
        user_id=user["sub"],
        user_email=user.get("email"),
        subject_token=subject[0] if subject else None,
        subject_token_type=subject[1] if subject else SUBJECT_TOKEN_TYPE_ACCESS,
    )
    if runtime is None:
        return Runtime(context=context)
    return runtime.override(context=context)


async def _connection_preflight(
    tool: BaseTool, call: ToolCall, user: ActingUser, runtime: Runtime[Context] | None
) -> dict[str, Any] | None:
    """Before asking the user to approve (or redeeming an approval), make sure the tool's
    connection works: a missing GitHub connection interrupts here, never after the approval."""
    need = requirements_of(tool).connection
    subject = subject_token_for(user, runtime) if need is not None else None
    if need is None or subject is None:
        return None  # no connection needed, or no user token in this run (checked after)
    try:
        await get_token_vault().get_token(
            user_id=user["sub"],
            subject_token=subject[0],
            subject_token_type=subject[1],
            connection=need.connection,
            scopes=list(need.scopes),
        )
    except ConnectionRequired as exc:
        answer = interrupt(connection_interrupt(exc, tool.name))
        if is_cancel(answer):
            return {
                "cancel": f"The {exc.connection} account is not connected, so {tool.name} did "
                "nothing (cancelled)."
            }
        return {"again": True}
    except (ProviderUnavailable, AuthError) as exc:
        return {"cancel": str(exc)}
    return None


async def _push(
    ledger: ApprovalsLedger,
    record: ApprovalRecord,
    tool: BaseTool,
    need: ApprovalRequirement,
    digest: str,
    args: dict[str, Any],
) -> ApprovalRecord:
    """Send the one CIBA request for this call and record what the provider answered."""
    s = get_settings()
    ping = delivery_mode(s) == "ping"
    request = await (await get_ciba_client(s)).start(
        record.user_id,
        record.binding_message,
        list(need.scopes),
        audience=need.audience or s.audience,
        requested_expiry=s.ciba_requested_expiry,
        authorization_details=authorization_details(tool.name, digest, arguments=_summary(args)),
        notification_token=notification_token(record.id, s) if ping else None,
    )
    record = await ledger.attach_request(
        record.id,
        auth_req_id=request.auth_req_id,
        expires_at=request.expires_at,
        interval=request.interval,
    )
    if ping:  # the poller is only a safety net for a lost ping
        await ledger.set_interval(
            record.id, request.interval, next_check_at(request.interval, time.time(), s)
        )
    log.info("approval %s pushed for %s (%s)", record.id, tool.name, "ping" if ping else "poll")
    return record


async def _run_approved(
    ledger: ApprovalsLedger,
    record: ApprovalRecord,
    tool: BaseTool,
    call: ToolCall,
    user: ActingUser,
    runtime: Runtime[Context] | None,
    granted: ApprovalGranted,
) -> dict[str, list[ToolMessage]]:
    """Claim the one execution this approval allows and run the tool with the approval's token."""
    if not await ledger.transition(
        record.id, ApprovalStatus.APPROVED, expected=ApprovalStatus.PENDING
    ) or not await ledger.claim_execution(record.id):
        used = error_message(call, "This approval was already used.")
        return {"messages": [await _settled_or(ledger, call, record.id, used)]}
    run_runtime = _runtime_with(runtime, user, _subject(user, runtime, granted))
    action = ApprovedAction(marker=approval_marker(record.id), created_after=record.created_at)
    try:
        with approved_action_scope(action):
            message = await execute_tool_call(
                tool, call, user, run_runtime, approval_token=granted.access_token
            )
    except GraphInterrupt:
        # The connection vanished between the check and the run; the approval cannot wait.
        message = error_message(
            call,
            f"You approved {tool.name}, but your account connection is missing now; nothing "
            "was done. Connect the account and ask again.",
        )
    except Exception as exc:  # the execution was claimed: it must end in a final state
        log.warning("approved tool %s failed: %s", tool.name, type(exc).__name__)
        message = error_message(call, f"The {tool.name} tool failed ({type(exc).__name__}).")
    if action.outcome_unknown:
        # Sent, but no answer: it may have happened. Find out instead of saying "nothing".
        cause = "GitHub did not answer in time after the request was sent"
        return {
            "messages": [
                await _reconcile(ledger, record, tool, call, user, run_runtime, action, cause)
            ]
        }
    text = str(message.content)[:OUTCOME_CHARS]
    final = ApprovalStatus.DONE if message.status != "error" else ApprovalStatus.FAILED
    try:
        await ledger.transition(record.id, final, expected=ApprovalStatus.EXECUTING, outcome=text)
    except LEDGER_FAILURES as exc:
        # The action ran: say what it did. The record stays `executing`, which never runs again.
        log.warning("approval %s: recording the outcome failed: %s", record.id, type(exc).__name__)
    log.info("approval %s: %s ran (%s)", record.id, tool.name, final.value)
    return {"messages": [message]}


async def _look_for_result(
    tool: BaseTool,
    user: ActingUser,
    runtime: Runtime[Context] | None,
    reconciler: Reconciler,
    action: ApprovedAction,
) -> str | None:
    """Run the tool's reconciler with the connection token the tool itself would get."""
    need = requirements_of(tool).connection
    if need is None:
        return await reconciler(action)
    subject = subject_token_for(user, runtime)
    if subject is None:
        raise LoginRequired("your sign-in is not available to this run")
    token = await get_token_vault().get_token(
        user_id=user["sub"],
        subject_token=subject[0],
        subject_token_type=subject[1],
        connection=need.connection,
        scopes=list(need.scopes),
    )
    credentials = ToolCredentials(
        connection_tokens={need.connection: token.access_token},
        user_id=user.get("email") or user["sub"],
    )
    with credentials_scope(credentials):
        return await reconciler(action)


async def _reconcile(
    ledger: ApprovalsLedger,
    record: ApprovalRecord,
    tool: BaseTool,
    call: ToolCall,
    user: ActingUser,
    runtime: Runtime[Context] | None,
    action: ApprovedAction,
    cause: str,
) -> ToolMessage:
    """An `executing` record whose outcome is unknown: look for what it created (by its
    marker) and record `done` with it, or `failed` when it is certainly not there; when the
    look itself fails, the record stays `executing` (it never runs again) and the user is told
    that the outcome is unknown."""
    what = f"'{record.binding_message}'"
    reconciler = reconciler_for(tool.name)
    found: str | None = None
    problem = None if reconciler is not None else f"{tool.name} offers no way to check"
    for attempt in range(RECONCILE_ATTEMPTS if reconciler is not None else 0):
        try:
            found = await _look_for_result(tool, user, runtime, reconciler, action)
            problem = None
        except ProviderUnavailable as exc:  # a service that just timed out may still be slow
            problem = f"{exc.service}: {exc.reason}"
        except (AuthError, ValueError) as exc:
            problem = str(exc)[:200] or type(exc).__name__
            break  # no credential, or a refusal: asking again gives the same answer
        if found is not None:
            break
        if attempt + 1 < RECONCILE_ATTEMPTS:
            await asyncio.sleep(RECONCILE_DELAY_SECONDS)
    if found is not None:
        if await ledger.transition(
            record.id, ApprovalStatus.DONE, expected=ApprovalStatus.EXECUTING, outcome=found
        ):
            log.info("approval %s: outcome found after %s", record.id, cause)
        return ToolMessage(
            content=f"{found} ({cause}; it was done, as a look at your account shows).",
            tool_call_id=call["id"] or "",
            name=tool.name,
        )
    if problem is None:
        outcome = "not done: checked, nothing carries its marker (" + cause + ")"
        await ledger.transition(
            record.id, ApprovalStatus.FAILED, expected=ApprovalStatus.EXECUTING, outcome=outcome
        )
        return error_message(
            call,
            f"{cause.capitalize()}; a look at your account shows it was not done, so nothing "
            f"was done for {what}. You can ask again.",
        )
    await ledger.note_outcome(
        record.id,
        f"outcome unknown: {cause}; check failed: {problem}"[:OUTCOME_CHARS],
        status=ApprovalStatus.EXECUTING,
    )
    return error_message(
        call,
        f"Whether {what} was done is unknown: {cause}, and checking failed ({problem}). It will "
        "not run again; look at your account before asking again.",
    )


async def _recover(
    ledger: ApprovalsLedger,
    record: ApprovalRecord,
    tool: BaseTool,
    call: ToolCall,
    user: ActingUser,
    runtime: Runtime[Context] | None,
) -> ToolMessage:
    """A record a crash left `approved` (nothing ran) or `executing` (it may have run)."""
    what = f"'{record.binding_message}'"
    if record.status is ApprovalStatus.APPROVED:
        text = (
            f"You approved {what}, but the run that was to carry it out was cut off before it "
            "started; nothing was done. You can ask again."
        )
        if await ledger.transition(
            record.id,
            ApprovalStatus.FAILED,
            expected=ApprovalStatus.APPROVED,
            outcome="not run: cut off after the approval",
        ):
            return error_message(call, text)
        return await _settled_or(ledger, call, record.id, error_message(call, text))
    action = ApprovedAction(marker=approval_marker(record.id), created_after=record.created_at)
    cause = "the run that was carrying it out was cut off"
    return await _reconcile(ledger, record, tool, call, user, runtime, action, cause)


async def _unknown_grant(
    ledger: ApprovalsLedger, call: ToolCall, record: ApprovalRecord, text: str
) -> dict[str, list[ToolMessage]]:
    """`invalid_grant`: the provider no longer knows the request. Usually a concurrent run of
    this thread redeemed it a moment ago; give that run time to record it before failing."""
    deadline = time.monotonic() + REDEEM_GRACE_SECONDS
    while time.monotonic() < deadline:
        current = await ledger.get(record.id)
        if current is not None and current.status is not ApprovalStatus.PENDING:
            settled = settled_message(call, current)
            if settled is not None:
                return {"messages": [settled]}
        await asyncio.sleep(0.05)
    if record.polled_at is not None:
        # A poll of ours went out and its answer was never recorded: that poll redeemed the
        # grant, and the run that got the answer was cut off (a crash) before recording it.
        text = (
            f"Your answer to '{record.binding_message}' was already collected by an earlier run "
            "of this conversation, which was cut off (a crash or a lost answer) before it could "
            "record it; an approval is used at most once, so nothing was done. You can ask again."
        )
        outcome = "invalid_grant: collected by an earlier, cut-off run"
        return await _settle(
            ledger, call, record, ApprovalStatus.FAILED, outcome, error_message(call, text)
        )
    return await _settle(
        ledger, call, record, ApprovalStatus.FAILED, "invalid_grant", error_message(call, text)
    )


async def _poll(
    ledger: ApprovalsLedger,
    record: ApprovalRecord,
    tool: BaseTool,
    call: ToolCall,
    user: ActingUser,
    runtime: Runtime[Context] | None,
) -> dict[str, list[ToolMessage]]:
    """Ask the provider once (if the interval allows) and act on its answer."""
    now = time.time()
    due = record.next_poll_at is None or now >= record.next_poll_at - DUE_SLACK_SECONDS
    if not due and not record.expired_at(now):
        return _again()  # CIBA: no faster than the interval; a ping would have marked it due
    s = get_settings()
    # Set before polling, so that a ping arriving meanwhile (which marks it due) is not lost.
    await ledger.set_interval(
        record.id, record.poll_interval, next_check_at(record.poll_interval, now, s)
    )
    request = request_of(record)
    what = f"'{record.binding_message}'"
    await ledger.mark_polled(record.id)
    try:
        granted = await (await get_ciba_client(s)).poll(request)
        await verify_parties(granted, record.user_id, tool)  # RFC 8693: sub and act.sub
    except ApprovalPending:
        await ledger.mark_polled(record.id, in_flight=False)
        if request.interval != record.poll_interval:  # slow_down: every later poll waits more
            later = max(request.not_before, next_check_at(request.interval, now, s))
            await ledger.set_interval(record.id, request.interval, later)
        return _again()
    except ApprovalDenied as exc:
        if "no longer knows" in str(exc):  # invalid_grant: maybe a concurrent run redeemed it
            return await _unknown_grant(ledger, call, record, str(exc))
        text = f"You denied {what} on your authenticator; nothing was done."
        return await _settle(
            ledger, call, record, ApprovalStatus.DENIED, "denied", error_message(call, text)
        )
    except ApprovalExpired:
        text = f"The approval request {what} expired before you answered; nothing was done."
        return await _settle(
            ledger, call, record, ApprovalStatus.EXPIRED, "expired", error_message(call, text)
        )
    except ApprovalUnverified as exc:
        # The grant is spent at the provider and proves nothing: fail it, say why, run nothing.
        log.warning("approval %s: grant not verified: %s", record.id, exc.reason)
        return await _settle(
            ledger,
            call,
            record,
            ApprovalStatus.FAILED,
            "grant not verified: " + exc.reason,
            error_message(call, str(exc)),
        )
    except ProviderUnavailable as exc:
        return await _settle(
            ledger, call, record, ApprovalStatus.FAILED, exc.reason, error_message(call, str(exc))
        )
    return await _run_approved(ledger, record, tool, call, user, runtime, granted)


def _unidentified_plain_call(
    config: RunnableConfig | None, runtime: Runtime[Context] | None
) -> bool:
    """A plain-Python run (no LangGraph server: no server info, no server user) whose caller
    names no user (no runtime context)."""
    if runtime is not None and getattr(runtime, "server_info", None) is not None:
        return False
    if ((config or {}).get("configurable") or {}).get("langgraph_auth_user") is not None:
        return False
    return caller_identity(config, runtime) is None


def _ledger_key(state: State, call: ToolCall) -> str | None:
    """The ledger's name for this call: its id; for a call without one, its place (the model
    message's id and the call's index, stable across resumes); None for a call that repeats an
    earlier call's id in the same message (the ledger would take it for that call)."""
    for message in reversed(state["messages"]):
        if isinstance(message, AIMessage):
            calls = message.tool_calls
            index = next((i for i, c in enumerate(calls) if c is call), None)
            if index is None:
                break
            call_id = call.get("id")
            if not call_id:
                return f"unnamed:{message.id}:{index}"
            if any(c.get("id") == call_id for c in calls[:index]):
                return None
            return call_id
    return call.get("id") or ""


async def approval(
    state: State,
    config: RunnableConfig,
    runtime: Runtime[Context],
    *,
    toolset: Toolset | None = None,
) -> dict[str, list[ToolMessage]]:
    """Answer the first pending call that needs approval (see the module docstring)."""
    user = acting_user(state, config, runtime)
    if _unidentified_plain_call(config, runtime):
        # Without a server, a run that names nobody could be anyone: it may not cancel the
        # owner's approval, nor be shown it. The resumers name the approval's own user.
        raise NoIdentity()
    toolset = toolset_or_default(toolset)  # the graph's own tools
    pending = toolset.pending_calls_for(state, "approval")
    if not pending:
        return _again()
    call = pending[0]
    tool = toolset.get(call.get("name", ""))
    need = requirements_of(tool).approval if tool is not None else None
    if tool is None or need is None:
        return {"messages": [error_message(call, f"{call.get('name')!r} needs no approval.")]}
    problem = validate_arguments(tool, call.get("args"))
    if problem:
        return {"messages": [error_message(call, problem)]}
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if not thread_id:
        return {
            "messages": [
                error_message(
                    call,
                    f"{tool.name} needs your approval, which needs a saved conversation "
                    "(a thread id and a checkpointer); nothing was done.",
                )
            ]
        }
    key = _ledger_key(state, call)
    if key is None:
        text = (
            f"This {tool.name} call repeats the id of an earlier call in the same reply, so it "
            "was not run (one approval covers one call); nothing was done. Ask again to do it "
            "a second time."
        )
        return {"messages": [error_message(call, text)]}
    try:
        return await _approve(tool, need, call, key, user, str(thread_id), runtime)
    except LEDGER_FAILURES as exc:
        # Every ledger step comes before the action runs (the one after is guarded in
        # `_run_approved`): without the ledger there is no at-most-once, so nothing runs.
        log.warning("approvals ledger unavailable: %s", type(exc).__name__)
        text = (
            f"The approvals ledger is unavailable ({type(exc).__name__}), so {tool.name} "
            "cannot be approved right now; nothing was done."
        )
        return {"messages": [error_message(call, text)]}


async def _approve(
    tool: BaseTool,
    need: ApprovalRequirement,
    call: ToolCall,
    key: str,
    user: ActingUser,
    thread_id: str,
    runtime: Runtime[Context],
) -> dict[str, list[ToolMessage]]:
    """Steps 1-3 of the module docstring for one validated call on a saved thread."""
    args = _validated_arguments(tool, call["args"])
    digest = action_digest(tool.name, args)
    ledger = await get_ledger()
    where = {"user_id": user["sub"], "thread_id": thread_id, "tool_call_id": key}
    existing = await ledger.find(**where)
    if existing is not None:
        if existing.action_digest != digest:
            return {
                "messages": [
                    error_message(
                        call,
                        "This tool call was already submitted for approval with different "
                        "arguments; nothing was done.",
                    )
                ]
            }
        if (
            existing.status in (ApprovalStatus.APPROVED, ApprovalStatus.EXECUTING)
            and time.time() - existing.updated_at > STALE_EXECUTION_SECONDS
        ):
            return {"messages": [await _recover(ledger, existing, tool, call, user, runtime)]}
        settled = settled_message(call, existing)
        if settled is not None:
            return {"messages": [settled]}

    # Before the user is asked (and before any grant is redeemed): can the tool run at all?
    check = await _connection_preflight(tool, call, user, runtime)
    if check is not None:
        if "again" in check:
            return _again()
        failure = error_message(call, check["cancel"])
        if existing is None:
            return {"messages": [failure]}
        outcome = "not run: " + check["cancel"][:200]
        return await _settle(ledger, call, existing, ApprovalStatus.FAILED, outcome, failure)
    # A standing approval covering this call runs it now (counted); else ask as always.
    if existing is None and (
        ran := await run_under_standing_approval(tool, call, key, user, thread_id, digest, runtime)
    ):
        return ran

    try:
        record, fresh = await ledger.reserve(
            **where,
            tool_name=tool.name,
            action_digest=digest,
            binding_message=binding_message(
                _binding_text(need, tool, args), digest, request_code()
            ),
        )
    except LedgerError as exc:
        return {"messages": [error_message(call, f"{exc}; nothing was done.")]}
    settled = settled_message(call, record)
    if settled is not None:
        return {"messages": [settled]}

    if record.auth_req_id is None:
        if fresh:
            try:
                record = await _push(ledger, record, tool, need, digest, args)
            except (ApprovalDenied, ApprovalExpired, ProviderUnavailable) as exc:
                return await _settle(
                    ledger,
                    call,
                    record,
                    ApprovalStatus.FAILED,
                    "push refused: " + str(exc)[:200],
                    error_message(call, str(exc)),
                )
        elif time.time() - record.created_at > STALE_PUSH_SECONDS:
            text = (
                "The approval request was cut off before the identity provider confirmed it; "
                "nothing was done. Ask again."
            )
            return await _settle(
                ledger,
                call,
                record,
                ApprovalStatus.FAILED,
                "push cut off",
                error_message(call, text),
            )

    answer = interrupt(_pending_payload(record, tool, args))

    # Resumed. The value is a nudge; only a cancel (doing less) is taken from it.
    current = await ledger.get(record.id)
    if current is None:
        return {
            "messages": [error_message(call, "The approval record vanished; nothing was done.")]
        }
    settled = settled_message(call, current)
    if settled is not None:
        return {"messages": [settled]}
    if is_cancel(answer):
        text = f"You cancelled '{current.binding_message}'; nothing was done."
        return await _settle(
            ledger, call, current, ApprovalStatus.FAILED, "cancelled", error_message(call, text)
        )
    if current.auth_req_id is None:
        return _again()  # another run is still pushing it
    return await _poll(ledger, current, tool, call, user, runtime)
