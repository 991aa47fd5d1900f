"""The Warrant agent graph: `build_graph(checkpointer=None)` and the module-level `graph`.

One turn: `identity` (record or check the acting user) -> `agent` (chat model with tools bound)
-> a node per pending tool call (`approval` for tools needing the user's approval, `retrieve` for
document search, `tools` for the rest) -> back to `agent` -> the answer.

`langgraph.json` names `./graph/agent.py:graph`; the LangGraph server brings its own checkpointer.
Plain Python passes one: `AsyncSqliteSaver` with `await graph.ainvoke(...)`, or `SqliteSaver`
with `graph.invoke(...)` (every node also has a synchronous form for that).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# The same node wrapper LangGraph builds for plain functions; used to give async nodes a
# synchronous twin while keeping LangGraph's injection of `config` and `runtime`.
from langgraph._internal._runnable import RunnableCallable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.context import Context
from graph.nodes import OPTIONAL_NODES, optional_node
from graph.nodes.agent import agent
from graph.nodes.identity import identity, refuse
from graph.nodes.tools import tools
from graph.routing import route_after_agent, route_after_tool_node
from graph.state import InputState, State


def _run_sync(afunc: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """A synchronous form of an async node (for `graph.invoke` with a sync checkpointer)."""

    @functools.wraps(afunc)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # The node's task copies this thread's context: LangGraph's config and interrupts
            # keep working inside.
            return asyncio.run(afunc(*args, **kwargs))
        # Called synchronously from inside an event loop: run on a helper thread instead.
        context = contextvars.copy_context()
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(context.run, asyncio.run, afunc(*args, **kwargs)).result()

    return run


def _node(name: str, afunc: Callable[..., Awaitable[Any]]) -> RunnableCallable:
    return RunnableCallable(_run_sync(afunc), afunc, name=name, trace=False)


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    *,
    interrupt_before: Sequence[str] | None = None,
) -> CompiledStateGraph[State, Context, InputState, State]:
    """The compiled agent; pass a checkpointer for persistence (the server brings its own)."""
    builder = StateGraph(State, context_schema=Context, input_schema=InputState)
    builder.add_node("identity", _node("identity", identity), destinations=("agent", "refuse", END))
    builder.add_node("agent", _node("agent", agent))
    builder.add_node("tools", _node("tools", tools))
    present = ["tools"]
    for name in OPTIONAL_NODES:
        node = optional_node(name)
        if node is not None:
            builder.add_node(name, _node(name, node))
            present.append(name)
    # `refuse` hands the owner's unanswered tool call back to its node (see its docstring).
    builder.add_node("refuse", _node("refuse", refuse), destinations=("agent", *present))

    builder.add_edge(START, "identity")
    builder.add_conditional_edges("agent", route_after_agent, [*present, END])
    for name in present:
        builder.add_conditional_edges(name, route_after_tool_node, [*present, "agent"])
    return builder.compile(
        checkpointer=checkpointer, interrupt_before=list(interrupt_before or []), name="agent"
    )


graph = build_graph()
