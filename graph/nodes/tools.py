"""The `tools` node: runs one pending tool call with exactly the authority the tool declared.

A tool with a `ConnectionRequirement` gets a short-lived token from the Token Vault for the
acting user, handed to its body through `tools.base.credentials_scope` (never as an argument,
never in state). A tool with a `RelationRequirement` has its output checked with FGA
(`graph/relations.py`): only objects the user holds the relation on reach the model.
When the user has not connected the account, the node interrupts with
`{"type": "connection_required", ...}`; any resume asks the vault again, so a resume value can
only ever cancel, never grant. Every failure becomes a ToolMessage the model can relay.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from auth.audit import note_action
from auth.errors import AuthError, ConnectionRequired, LoginRequired, ProviderUnavailable
from auth.token_vault import ConnectionToken, get_token_vault
from graph.context import Context
from graph.identity import acting_user, subject_token_for
from graph.relations import RelationCheckFailed, authorized_objects, render_objects
from graph.routing import toolset_or_default
from graph.state import ActingUser, State
from graph.toolset import Toolset
from tools.base import ConnectionRequirement, ToolCredentials, credentials_scope, requirements_of
from tools.identity import ActingIdentity, acting_identity_scope

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
CANCEL_VALUES = frozenset({"cancel", "cancelled", "canceled", "abort", "no", "skip"})


def error_message(call: ToolCall, text: str) -> ToolMessage:
    """A ToolMessage that tells the model (and the user) why the call did nothing."""
    return ToolMessage(
        content=text, tool_call_id=call["id"] or "", name=call.get("name"), status="error"
    )


def validate_arguments(tool: BaseTool, args: Any) -> str | None:
    """Why `args` do not fit the tool's schema, in plain words; None when they fit."""
    if not isinstance(args, dict):
        return f"Invalid arguments for {tool.name}: expected an object, got {type(args).__name__}."
    schema = tool.args_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None
    try:
        schema.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
            for err in exc.errors()
        )
        return f"Invalid arguments for {tool.name}: {problems}."
    return None


def is_cancel(value: Any) -> bool:
    """A resume that declines (the only thing a resume value may decide: doing less)."""
    if isinstance(value, str):
        return value.strip().lower() in CANCEL_VALUES
    if isinstance(value, dict):
        return value.get("cancel") is True or str(value.get("action", "")).lower() in CANCEL_VALUES
    return False


def connection_interrupt(exc: ConnectionRequired, tool: str) -> dict[str, Any]:
    """The interrupt payload asking the user to connect an account (no credential in it)."""
    return {
        "type": "connection_required",
        "connection": exc.connection,
        "scopes": list(exc.scopes),
        "missing_scopes": list(exc.missing_scopes),
        "connect_url": exc.connect_url,
        "tool": tool,
        "message": str(exc),
    }


def _scrub(message: ToolMessage, secrets: list[str]) -> ToolMessage:
    """Defence in depth: a tool echoing its token never gets it into state."""
    if isinstance(message.content, str):
        content = message.content
        for secret in secrets:
            if secret and secret in content:
                log.warning("tool %s echoed a credential; redacted", message.name)
                content = content.replace(secret, REDACTED)
        if content is not message.content:
            message = message.model_copy(update={"content": content})
    return message


# How a caller other than this node runs the tool body (the middleware hands over the agent's
# own tool executor); None means `tool.ainvoke(call)`.
ToolRunner = Callable[[], Awaitable[Any]]


async def invoke_tool(
    tool: BaseTool,
    call: ToolCall,
    credentials: ToolCredentials,
    user: ActingUser,
    runner: ToolRunner | None = None,
) -> ToolMessage:
    """Run one tool call with `credentials` in scope; tool errors come back as ToolMessages.

    Authority errors (`AuthError`: a refused token, a missing connection) propagate to the
    caller, which knows how to retry or interrupt.
    """
    identity = ActingIdentity(sub=user["sub"], email=user.get("email"))
    relation = requirements_of(tool).relation
    with credentials_scope(credentials), acting_identity_scope(identity):
        try:
            if relation is not None:
                # The raw objects, checked with FGA before any of them becomes a message.
                output = await tool.ainvoke(call.get("args") or {})
                allowed = await authorized_objects(output, relation, user.get("email"))
                return ToolMessage(
                    content=render_objects(allowed), tool_call_id=call["id"] or "", name=tool.name
                )
            if runner is not None:
                result = await runner()
            else:
                result = await tool.ainvoke({**call, "type": "tool_call"})
        except RelationCheckFailed as exc:
            return error_message(call, f"{tool.name} showed nothing: {exc}.")
        except (GraphBubbleUp, AuthError):
            raise
        except ValidationError as exc:
            return error_message(
                call,
                f"Invalid arguments for {tool.name}: {exc.error_count()} "
                "problem(s) with the arguments.",
            )
        except Exception as exc:
            # The exception text may carry request details; the type is enough for the user.
            log.warning("tool %s failed: %s", tool.name, type(exc).__name__)
            return error_message(
                call, f"The {tool.name} tool failed unexpectedly ({type(exc).__name__})."
            )
    if isinstance(result, ToolMessage):
        return result
    return ToolMessage(content=str(result), tool_call_id=call["id"] or "", name=tool.name)


async def _with_connection(
    tool: BaseTool,
    call: ToolCall,
    need: ConnectionRequirement,
    user: ActingUser,
    runtime: Runtime[Context],
    fga_id: str,
    approval_token: str | None,
    runner: ToolRunner | None = None,
) -> ToolMessage:
    subject = subject_token_for(user, runtime)
    if subject is None:
        return error_message(
            call,
            f"{tool.name} needs your {need.connection} account, and your sign-in is not "
            "available to this run: log in again (for example `warrant login`).",
        )
    token, token_type = subject
    used: list[str] = [approval_token or ""]

    async def run(connection_token: ConnectionToken) -> ToolMessage:
        used.append(connection_token.access_token)
        credentials = ToolCredentials(
            connection_tokens={need.connection: connection_token.access_token},
            approval_token=approval_token,
            user_id=fga_id,
        )
        return await invoke_tool(tool, call, credentials, user, runner)

    vault = get_token_vault()
    while True:
        try:
            message = await vault.run_with_token(
                run,
                user_id=user["sub"],
                subject_token=token,
                subject_token_type=token_type,
                connection=need.connection,
                scopes=list(need.scopes),
            )
            return _scrub(message, used)
        except ConnectionRequired as exc:
            log.info("tool %s waits for a %s connection", tool.name, exc.connection)
            # A resume only nudges: the loop asks the vault again; a declining resume cancels.
            answer = interrupt(connection_interrupt(exc, tool.name))
            if is_cancel(answer):
                return error_message(
                    call,
                    f"The {exc.connection} account is not connected, so {tool.name} did "
                    "nothing (cancelled).",
                )


async def execute_tool_call(
    tool: BaseTool,
    call: ToolCall,
    user: ActingUser,
    runtime: Runtime[Context],
    *,
    approval_token: str | None = None,
    runner: ToolRunner | None = None,
) -> ToolMessage:
    """Run a validated call with the connection token it declared (and, from the approval node,
    the approval's token); interrupts for a missing connection, otherwise says why it did not run.

    `ToolCredentials.user_id` is the acting user's email when known (what FGA checks), else `sub`.
    """
    req = requirements_of(tool)
    fga_id = user.get("email") or user["sub"]
    try:
        if req.connection is not None:
            return await _with_connection(
                tool, call, req.connection, user, runtime, fga_id, approval_token, runner
            )
        credentials = ToolCredentials(approval_token=approval_token, user_id=fga_id)
        message = await invoke_tool(tool, call, credentials, user, runner)
        return _scrub(message, [approval_token or ""])
    except (ProviderUnavailable, LoginRequired) as exc:
        return error_message(call, str(exc))
    except AuthError as exc:
        return error_message(call, f"{tool.name} was not authorized: {exc}")
    except ValueError as exc:
        log.warning("tool %s could not get a credential: %s", tool.name, type(exc).__name__)
        return error_message(call, f"{tool.name} could not get a credential for you.")


async def run_tool_call(
    call: ToolCall,
    user: ActingUser,
    runtime: Runtime[Context],
    toolset: Toolset | None = None,
) -> ToolMessage:
    """Answer one tool call: validate, resolve its authority, run it, or say why not."""
    tool = toolset_or_default(toolset).get(call.get("name", ""))
    if tool is None:
        return error_message(call, f"There is no tool named {call.get('name')!r}.")
    problem = validate_arguments(tool, call.get("args"))
    if problem:
        return error_message(call, problem)
    if requirements_of(tool).approval is not None:
        # Routed here only when no approval node exists: fail closed.
        return error_message(
            call,
            f"{tool.name} needs your approval, and approvals are not available here; "
            "nothing was done.",
        )
    message = await execute_tool_call(tool, call, user, runtime)
    await note_action(tool.name, call.get("args"), user["sub"], ran=message.status != "error")
    return message


async def tools(
    state: State,
    config: RunnableConfig,
    runtime: Runtime[Context],
    *,
    toolset: Toolset | None = None,
) -> dict[str, list[ToolMessage]]:
    """Answer the first pending call routed here; the router brings the graph back for more."""
    user = acting_user(state, config, runtime)
    toolset = toolset_or_default(toolset)
    pending = toolset.pending_calls_for(state, "tools")
    if not pending:
        return {"messages": []}
    return {"messages": [await run_tool_call(pending[0], user, runtime, toolset)]}
