"""The `agent` node: the chat model, with the graph's tools bound, takes the next turn."""

from __future__ import annotations

import logging

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from graph.model import ModelConfigError, chat_model, describe, describe_model
from graph.routing import bindable_tools
from graph.state import ActingUser, State
from graph.toolset import Toolset
from settings import get_settings

log = logging.getLogger(__name__)


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
        log.warning("chat model %s failed: %s", name, type(exc).__name__)
        return {
            "messages": [
                AIMessage(
                    content=(
                        f"The chat model ({name}) failed "
                        f"({type(exc).__name__}); nothing was done. Try again later."
                    )
                )
            ]
        }
    if not isinstance(reply, AIMessage):
        reply = AIMessage(content=str(reply.content))
    if reply.invalid_tool_calls:
        return {"messages": [reply, *malformed_call_answers(reply)]}
    return {"messages": [reply]}


def malformed_call_answers(reply: AIMessage) -> list[ToolMessage | AIMessage]:
    """Answers for tool calls whose arguments the model garbled (unparseable JSON).

    Each gets an error ToolMessage (OpenAI requires an answer for every call it made), nothing
    runs, and the turn ends by saying so; valid calls in the same reply are dropped with them.
    """
    names = []
    answers: list[ToolMessage | AIMessage] = []
    for call in [*reply.invalid_tool_calls, *reply.tool_calls]:
        name = call.get("name") or "a tool"
        names.append(name)
        answers.append(
            ToolMessage(
                content=f"Not run: the model sent malformed arguments for {name}.",
                tool_call_id=call.get("id") or "",
                name=name,
                status="error",
            )
        )
    answers.append(
        AIMessage(
            content=(
                f"I could not act: my request to {', '.join(sorted(set(names)))} was malformed, "
                "so nothing was done. Please rephrase and try again."
            )
        )
    )
    return answers
