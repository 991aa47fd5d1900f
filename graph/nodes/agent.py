"""The `agent` node: the chat model, with the graph's tools bound, takes the next turn."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig

from graph.model import ModelConfigError, chat_model, describe, describe_model
from graph.routing import bindable_tools
from graph.state import ActingUser, State
from graph.toolset import Toolset
from settings import get_settings

log = logging.getLogger(__name__)

# A Gist file may be 1 MB; a tool call twice that size is no real request (and the thread would
# send it back to the model on every later turn).
MAX_TOOL_ARGUMENT_BYTES = 2_000_000


def system_prompt(user: ActingUser | None) -> str:
    """Instructions for the model; names the acting user (an identity, never a credential)."""
    who = (user or {}).get("email") or (user or {}).get("sub") or "the signed-in user"
    return (
        f"You are Warrant, an assistant acting on behalf of {who}. Use the tools to act; "
        "each tool is authorized separately (a connected account, the user's approval, or "
        "document permissions). When a tool says it could not act, tell the user plainly and "
        "do not claim that anything was done."
    )


async def agent(
    state: State,
    config: RunnableConfig,
    *,
    toolset: Toolset | None = None,
    model: BaseChatModel | None = None,
) -> dict[str, list[AnyMessage]]:
    """One model turn: a reply, or tool calls for the router.

    `model` is the graph's own chat model; without one, the process's (`settings.model`).
    """
    settings = get_settings()
    name = describe_model(model) if model is not None else describe(settings.model)
    try:
        base = model if model is not None else chat_model(settings)
        bound = base.bind_tools(bindable_tools(toolset))
    except ModelConfigError as exc:
        return {"messages": [AIMessage(content=f"The chat model is not configured: {exc}")]}
    prompt = [SystemMessage(content=system_prompt(state.get("user"))), *state["messages"]]
    try:
        reply = await bound.ainvoke(prompt, config)
    except Exception as exc:
        # Any model failure (network, timeout, quota, bad answer) ends the turn with a plain
        # message; the exception text is not shown: provider errors may echo request details.
        # The thread keeps everything before it, so the next message simply carries on.
        log.warning("chat model %s failed: %s", name, type(exc).__name__)
        return {"messages": [AIMessage(content=model_failure_text(name, exc, state["messages"]))]}
    if not isinstance(reply, AIMessage):
        reply = AIMessage(content=str(reply.content))
    return {"messages": screen_tool_calls(reply)}


def model_failure_text(name: str, exc: BaseException, messages: list[AnyMessage]) -> str:
    """What the user reads when the model fails; honest about tools that already ran."""
    ran = []
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, ToolMessage) and message.status != "error":
            ran.append(message.name or "a tool")
    if ran:
        return (
            f"The chat model ({name}) failed ({type(exc).__name__}) before it could answer. "
            f"What {', '.join(sorted(set(ran)))} did above stands; nothing else was done. "
            "Send a message to carry on."
        )
    return (
        f"The chat model ({name}) failed ({type(exc).__name__}); nothing was done. Try again later."
    )


def _argument_bytes(args: Any) -> int:
    if isinstance(args, str):
        return len(args.encode())
    return len(json.dumps(args, ensure_ascii=False, default=str).encode())


def screen_tool_calls(reply: AIMessage) -> list[AnyMessage]:
    """The model's reply, made safe to route: every call has its own id; a call with garbled
    (unparseable) or oversized arguments stops the whole request before anything runs.

    Each call of a stopped request gets an error ToolMessage (OpenAI requires an answer for
    every call it made), and the turn ends by saying so; valid calls in the same reply are not
    run either (the model meant them together). Oversized arguments are not kept in the thread:
    they would be sent back to the model on every later turn.
    """
    seen: set[str] = set()
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    oversized: set[str] = set()
    for kind, source in (("valid", reply.tool_calls), ("invalid", reply.invalid_tool_calls)):
        for call in source:
            call = dict(call)
            if not call.get("id") or call["id"] in seen:
                # A missing or repeated id would make two actions one (approvals are keyed by it).
                call["id"] = f"call_{uuid.uuid4().hex[:24]}"
            seen.add(call["id"])
            size = _argument_bytes(call.get("args"))
            if size > MAX_TOOL_ARGUMENT_BYTES:
                oversized.add(call["id"])
                call["args"] = {"omitted": f"{size} bytes of arguments"} if kind == "valid" else ""
            (calls if kind == "valid" else invalid).append(call)
    reply = reply.model_copy(update={"tool_calls": calls, "invalid_tool_calls": invalid})
    if not invalid and not oversized:
        return [reply]
    answers: list[AnyMessage] = [reply]
    problems: list[str] = []
    for call in [*invalid, *calls]:
        name = call.get("name") or "a tool"
        if call in invalid:
            text = f"Not run: the model sent malformed arguments for {name}."
            problems.append(f"my request to {name} was malformed")
        elif call["id"] in oversized:
            text = (
                f"Not run: the arguments for {name} were larger than the "
                f"{MAX_TOOL_ARGUMENT_BYTES} bytes a tool call may carry."
            )
            problems.append(f"my request to {name} was too large")
        else:
            text = f"Not run: another call in the same request was unusable, so {name} did not run."
        answers.append(
            ToolMessage(content=text, tool_call_id=call["id"], name=name, status="error")
        )
    answers.append(
        AIMessage(
            content=(
                f"I could not act: {'; '.join(dict.fromkeys(problems))}, so nothing was done. "
                "Please rephrase and try again."
            )
        )
    )
    return answers
