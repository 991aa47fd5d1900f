"""Routing: which node answers each tool call the model made, and when the turn is over.

A model may ask for several tools at once; they are answered one node visit at a time, in order,
so that an interrupt in one never re-runs another that already finished (at most once). Which
node answers a call depends on the graph's own tool set (`graph.toolset.Toolset`); the functions
here take it explicitly and default to Warrant's own four tools.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool

from graph.toolset import (
    DOCUMENT_SEARCH_TOOL,
    TOOL_NODES,
    Toolset,
    default_toolset,
    pending_tool_calls,
)

_default: Toolset | None = None


def toolset_or_default(toolset: Toolset | None) -> Toolset:
    """`toolset`, or Warrant's default tool set (built once per process)."""
    global _default
    if toolset is not None:
        return toolset
    if _default is None:
        _default = default_toolset()
    return _default


def available_nodes() -> frozenset[str]:
    """The nodes that answer tool calls (every graph has all three)."""
    return frozenset(TOOL_NODES) - {"tools"}


def node_for(call: ToolCall, toolset: Toolset | None = None) -> str:
    """The node that answers `call`: `approval`, `retrieve` or `tools`."""
    return toolset_or_default(toolset).node_for(call)


def pending_calls_for(
    state: dict[str, Any], node: str, toolset: Toolset | None = None
) -> list[ToolCall]:
    """The pending tool calls that `node` answers, in the order the model made them."""
    return toolset_or_default(toolset).pending_calls_for(state, node)


def route_after_agent(state: dict[str, Any], toolset: Toolset | None = None) -> str:
    """No tool call ends the turn; otherwise the node for the first pending call."""
    return toolset_or_default(toolset).route_after_agent(state)


def route_after_tool_node(state: dict[str, Any], toolset: Toolset | None = None) -> str:
    """The node for the next pending call, or back to `agent` once all are answered."""
    return toolset_or_default(toolset).route_after_tool_node(state)


def bindable_tools(toolset: Toolset | None = None) -> list[BaseTool]:
    """The tools the model may call: every tool of the set (each node enforces its declaration)."""
    return list(toolset_or_default(toolset).tools)


__all__ = [
    "DOCUMENT_SEARCH_TOOL",
    "available_nodes",
    "bindable_tools",
    "node_for",
    "pending_calls_for",
    "pending_tool_calls",
    "route_after_agent",
    "route_after_tool_node",
    "toolset_or_default",
]
