"""A graph's tool set: which tools the model may call, and which node answers each call.

`build_graph(tools=...)` makes one `Toolset` and hands it to every node that looks tools up (the
agent binds it, the router routes by it, the `tools`, `approval` and `retrieve` nodes run from
it), so two graphs in one process never see each other's tools. What a tool may do comes only
from what it declared with `tools.base.declare(...)`:
- an `ApprovalRequirement` -> the `approval` node (CIBA, at most once through the ledger);
- the built-in document search -> the `retrieve` node (FGA-filtered Chroma passages);
- anything else -> the `tools` node (Token Vault for a connection, FGA for a relation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool

from tools.base import ToolRequirements, requirements_of

NodeName = Literal["tools", "approval", "retrieve"]
TOOL_NODES: tuple[NodeName, ...] = ("tools", "approval", "retrieve")
DOCUMENT_SEARCH_TOOL = "search_internal_documents"


class ToolsetError(TypeError):
    """The tools given to `build_graph` (or the middleware) cannot form a tool set."""


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


@dataclass(frozen=True)
class Toolset:
    """An ordered, name-unique set of LangChain tools with their declared requirements."""

    tools: tuple[BaseTool, ...]
    _by_name: Mapping[str, BaseTool] = field(repr=False, compare=False)

    @classmethod
    def of(cls, tools: Iterable[Any]) -> Toolset:
        """Check and index `tools`; a non-tool or a duplicate name is a clear error."""
        if isinstance(tools, BaseTool | str | bytes) or not isinstance(tools, Iterable):
            raise ToolsetError("tools must be a list of LangChain tools")
        found: dict[str, BaseTool] = {}
        for item in tools:
            if not isinstance(item, BaseTool):
                raise ToolsetError(
                    f"{item!r} is not a LangChain tool: decorate it with @tool (langchain_core) "
                    "and declare its requirements with tools.base.declare(...)"
                )
            if item.name in found:
                raise ToolsetError(f"two tools are named {item.name!r}; tool names must be unique")
            found[item.name] = item
        return cls(tuple(found.values()), found)

    def __iter__(self) -> Iterator[BaseTool]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    def get(self, name: str) -> BaseTool | None:
        """The tool called `name` in this set, or None (a call to an unbound tool)."""
        return self._by_name.get(name)

    def requirements(self, name: str) -> ToolRequirements | None:
        tool = self.get(name)
        return requirements_of(tool) if tool is not None else None

    def node_for(self, call: ToolCall) -> NodeName:
        """The node that answers `call` (an unknown tool goes to `tools`, which says so)."""
        tool = self.get(call.get("name", ""))
        if tool is None:
            return "tools"
        if requirements_of(tool).approval is not None:
            return "approval"
        if tool.name == DOCUMENT_SEARCH_TOOL and tool is _document_search_tool():
            # Only Warrant's own search: a user tool that happens to share the name is run as
            # what it is, by the `tools` node.
            return "retrieve"
        return "tools"

    def pending_calls_for(self, state: Mapping[str, Any], node: str) -> list[ToolCall]:
        """The pending tool calls that `node` answers, in the order the model made them."""
        return [c for c in pending_tool_calls(state["messages"]) if self.node_for(c) == node]

    def route_after_agent(self, state: Mapping[str, Any]) -> str:
        """No tool call ends the turn; otherwise the node for the first pending call."""
        pending = pending_tool_calls(state["messages"])
        return self.node_for(pending[0]) if pending else "__end__"

    def route_after_tool_node(self, state: Mapping[str, Any]) -> str:
        """The node for the next pending call, or back to `agent` once all are answered."""
        pending = pending_tool_calls(state["messages"])
        return self.node_for(pending[0]) if pending else "agent"


def _document_search_tool() -> BaseTool:
    from tools.documents import search_internal_documents

    return search_internal_documents


def default_toolset() -> Toolset:
    """Warrant's own four tools (the graph `langgraph.json` serves)."""
    from tools import default_tools

    return Toolset.of(default_tools())
