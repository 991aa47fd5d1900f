"""The graph's nodes, one small async function per module.

`identity`, `agent` and `tools` are always present. `approval` (CIBA) and `retrieve` (FGA-filtered
documents) are contributed by their own modules; the graph adds such a node only when its module
exists. Contract for a contributed node module `graph/nodes/<name>.py`: it exports an async
function named `<name>` taking `(state, config, runtime)` (any subset, as LangGraph injects them)
that answers the pending tool calls routed to it (`graph.routing.pending_calls_for(state,
"<name>")`) with ToolMessages, calling `graph.identity.acting_user(...)` before it acts; the
graph then routes to the next pending call or back to `agent`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

OPTIONAL_NODES = ("approval", "retrieve")


def optional_node(name: str) -> Callable[..., Any] | None:
    """The node function from `graph.nodes.<name>`, or None when that module does not exist."""
    module_name = f"graph.nodes.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    node = getattr(module, name, None)
    if node is None or not callable(node):
        raise TypeError(f"{module_name} must export an async node function named {name!r}")
    return node
