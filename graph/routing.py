"""Routing: which node answers each tool call the model made, and when the turn is over.

A model may ask for several tools at once; they are answered one node visit at a time, in order,
so that an interrupt in one never re-runs another that already finished (at most once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langgraph.graph import END

from graph.nodes import optional_node
from tools import all_tools, get_tool
from tools.base import requirements_of

DOCUMENT_SEARCH_TOOL = "search_internal_documents"


def pending_tool_calls(messages: Sequence[AnyMessage]) -> list[ToolCall]:
    """The latest model message's tool calls that no ToolMessage has answered yet.

    Answers are counted, not just looked up: each answer covers one call, in order, so calls
    that share an id (or have none: their answers carry "") are answered once each instead of
    all at once, or never (an id-less call used to be routed again and again).
    """
    answers: Counter[str] = Counter()
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            answers[message.tool_call_id or ""] += 1
            continue
        if isinstance(message, AIMessage):
            pending = []
            for call in message.tool_calls:
                key = call.get("id") or ""
                if answers[key] > 0:
                    answers[key] -= 1
                else:
                    pending.append(call)
            return pending
        return []
    return []


def available_nodes() -> frozenset[str]:
    """The optional nodes whose modules exist in this installation."""
    return frozenset(name for name in ("approval", "retrieve") if optional_node(name) is not None)


def node_for(call: ToolCall, nodes: Collection[str] | None = None) -> str:
    """The node that answers `call`: `approval`, `retrieve` or `tools`."""
    nodes = available_nodes() if nodes is None else nodes
    tool = get_tool(call.get("name", ""))
    if tool is None:
        return "tools"  # answers with "no such tool"
    req = requirements_of(tool)
    if req.approval is not None:
        # Without an approval node, `tools` refuses it: a sensitive tool never runs unapproved.
        return "approval" if "approval" in nodes else "tools"
    if (tool.name == DOCUMENT_SEARCH_TOOL or req.relation is not None) and "retrieve" in nodes:
        return "retrieve"
    return "tools"


def pending_calls_for(state: dict[str, Any], node: str) -> list[ToolCall]:
    """The pending tool calls that `node` answers, in the order the model made them."""
    nodes = available_nodes()
    return [c for c in pending_tool_calls(state["messages"]) if node_for(c, nodes) == node]


def route_after_agent(state: dict[str, Any]) -> str:
    """No tool call ends the turn; otherwise the node for the first pending call."""
    pending = pending_tool_calls(state["messages"])
    return node_for(pending[0]) if pending else END


def route_after_tool_node(state: dict[str, Any]) -> str:
    """The node for the next pending call, or back to `agent` once all are answered."""
    pending = pending_tool_calls(state["messages"])
    return node_for(pending[0]) if pending else "agent"


def bindable_tools() -> list[Any]:
    """The tools the model may call: a tool needing approval only when the approval node exists."""
    nodes = available_nodes()
    return [
        tool
        for tool in all_tools()
        if requirements_of(tool).approval is None or "approval" in nodes
    ]
