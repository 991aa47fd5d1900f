"""`WarrantMiddleware`: Warrant's three authorities for declared tools in an agent you build with
LangChain's `create_agent`, through the same code the Warrant graph runs.

    agent = create_agent(model, tools=[...], middleware=[WarrantMiddleware()],
                         context_schema=Context, checkpointer=saver)
    await agent.ainvoke({"messages": [...]}, config, context=Context(user_id=..., ...))

For every tool call, by what the tool declared with `tools.base.declare(...)`:
- an `ApprovalRequirement`: the approval node's flow (`graph.nodes.approval`): one CIBA push
  per call, reserved in the approvals ledger, an `approval_pending` interrupt; on any resume the
  provider is asked (a resume is a nudge), and an approved call runs at most once;
- a `ConnectionRequirement`: a Token Vault token for the acting user, handed to the tool body
  through `tools.base.current_credentials()`, or a `connection_required` interrupt;
- a `RelationRequirement`: only objects the user holds the relation on reach the model (FGA);
- nothing declared: it runs as without the middleware, knowing only the acting identity.

Identity: the first run of a thread records the caller (runtime context `graph.context.Context`,
or the LangGraph server's auth user) in state as `user` (an id and an email, never a token);
later runs by anyone else are refused and their input taken back out of the thread. Interrupt
payloads are those of `graph.interrupts`; tool calls of one model message run as separate tasks
in `create_agent`, so two approvals may be pending at once: resume each by its interrupt id
(`Command(resume={i.id: {"wake": True} for i in interrupts})`). The middleware is async only:
`agent.invoke(...)` is refused with `SyncUseError` before anything runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NotRequired

from langchain.agents.middleware import AgentMiddleware, AgentState, hook_config
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolCall, ToolMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.context import Context
from graph.identity import IdentityMismatch, NoIdentity, acting_user, caller_identity
from graph.nodes.approval import LEDGER_FAILURES, _approve, _unidentified_plain_call
from graph.nodes.tools import error_message, execute_tool_call, validate_arguments
from graph.state import ActingUser
from tools.base import requirements_of

log = logging.getLogger(__name__)

Handler = Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]]


class SyncUseError(TypeError):
    """The middleware was driven synchronously; its authorities are async (network, ledger)."""

    def __init__(self) -> None:
        super().__init__(
            "WarrantMiddleware runs asynchronously: call the agent with ainvoke() or astream()"
        )


class WarrantState(AgentState[Any]):
    """The agent's state plus the recorded acting user (no credential of any kind)."""

    user: NotRequired[ActingUser | None]


class WarrantMiddleware(AgentMiddleware[WarrantState, Context, Any]):
    """Token Vault connections, CIBA approvals and FGA relations for declared tools."""

    state_schema = WarrantState

    def before_agent(self, state: WarrantState, runtime: Runtime[Context]) -> None:
        """Synchronous runs are refused before anything happens (fail closed, clearly)."""
        raise SyncUseError()

    def wrap_tool_call(self, request: ToolCallRequest, handler: Any) -> ToolMessage:
        raise SyncUseError()

    @hook_config(can_jump_to=["end"])
    async def abefore_agent(
        self, state: WarrantState, runtime: Runtime[Context]
    ) -> dict[str, Any] | None:
        """Record the caller on a thread's first run; refuse anyone else on a later one."""
        recorded = state.get("user")
        try:
            caller = caller_identity(get_config(), runtime)
        except IdentityMismatch:
            return _refuse(state)
        if recorded and caller and caller["sub"] != recorded["sub"]:
            return _refuse(state)
        if not recorded:
            if caller is None:
                raise NoIdentity()
            return {"user": caller}
        return None

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Handler
    ) -> ToolMessage | Command[Any]:
        """Answer one tool call with exactly the authority its tool declared."""
        tool, call = request.tool, request.tool_call
        if tool is None:
            return await handler(request)  # the agent's executor says there is no such tool
        runtime = _runtime(request)
        user = acting_user(request.state, request.runtime.config, runtime)
        problem = validate_arguments(tool, call.get("args"))
        if problem:
            return error_message(call, problem)
        req = requirements_of(tool)
        if req.approval is not None:
            return await self._approved(request, user, runtime)
        # The agent's own executor runs the tool body, inside the credentials and identity
        # scopes the declaration calls for (an undeclared tool gets the acting identity only).
        return await execute_tool_call(tool, call, user, runtime, runner=lambda: handler(request))

    async def _approved(
        self, request: ToolCallRequest, user: ActingUser, runtime: Runtime[Context]
    ) -> ToolMessage:
        tool, call = request.tool, request.tool_call
        assert tool is not None
        need = requirements_of(tool).approval
        assert need is not None
        if _unidentified_plain_call(request.runtime.config, runtime):
            # As in the approval node: a plain run that names nobody may neither cancel nor
            # see the owner's pending approval.
            raise NoIdentity()
        configurable = (request.runtime.config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if not thread_id:
            return error_message(
                call,
                f"{tool.name} needs your approval, which needs a saved conversation (a thread "
                "id and a checkpointer); nothing was done.",
            )
        key = _call_key(request.state, call)
        if key is None:
            return error_message(
                call,
                f"This {tool.name} call has no id of its own (none, or one shared with another "
                "call in the same reply), so it was not run: one approval covers one call; "
                "nothing was done.",
            )
        # The approval node answers "still pending" with no message and is visited again; here
        # the same task loops instead: each round interrupts at most once, and a replay after a
        # resume goes through the same ledger checks, so nothing is pushed or run twice.
        while True:
            try:
                out = await _approve(tool, need, call, key, user, str(thread_id), runtime)
            except LEDGER_FAILURES as exc:
                log.warning("approvals ledger unavailable: %s", type(exc).__name__)
                return error_message(
                    call,
                    f"The approvals ledger is unavailable ({type(exc).__name__}), so "
                    f"{tool.name} cannot be approved right now; nothing was done.",
                )
            if out["messages"]:
                [message] = out["messages"]
                return message


def _call_key(state: Any, call: ToolCall) -> str | None:
    """The ledger's name for `call`: its id, unless it has none or the model's reply gives the
    same id to another call too (the ledger would take one for the other)."""
    call_id = call.get("id")
    if not call_id:
        return None
    messages = state.get("messages", []) if isinstance(state, dict) else []
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            if sum(1 for c in message.tool_calls if c.get("id") == call_id) > 1:
                return None
            break
    return call_id


def _runtime(request: ToolCallRequest) -> Runtime[Context]:
    """The graph runtime the shared node code expects, from the tool call's runtime."""
    tool_runtime = request.runtime
    return Runtime(
        context=tool_runtime.context,
        store=tool_runtime.store,
        server_info=tool_runtime.server_info,
    )


def _refuse(state: WarrantState) -> dict[str, Any]:
    """Take the refused caller's input back out of the thread and end the run."""
    log.warning("refused a run on a thread that another user owns")
    removals = []
    for message in reversed(state["messages"]):
        if not isinstance(message, HumanMessage):
            break
        if message.id:
            removals.append(RemoveMessage(id=message.id))
    return {"messages": removals, "jump_to": "end"}


__all__ = ["SyncUseError", "WarrantMiddleware", "WarrantState"]
