"""The Warrant agent graph: `build_graph(checkpointer=None, *, tools=None, model=None)` and the
module-level `graph` that `langgraph.json` names (`./graph/agent.py:graph`).

One turn: `identity` (record or check the acting user) -> `agent` (chat model with the graph's
tools bound) -> a node per pending tool call (`approval` for tools needing the user's approval,
`retrieve` for Warrant's document search, `tools` for the rest) -> back to `agent` -> the answer.

`tools` is any list of LangChain tools, each declared with `tools.base.declare(...)` (default:
Warrant's own four); `model` a spec string (`offline`, `openai:<name>`) or a chat model instance
(default: `settings.model`). The tool set is captured by every node of this graph only.

Entry points: the LangGraph server brings its own checkpointer. Plain Python passes one, either
`AsyncSqliteSaver` with `await graph.ainvoke(...)` (the nodes are async), or `SqliteSaver` with
the synchronous `graph.invoke(...)`: each node is a `RunnableLambda(func, afunc)` whose sync form
runs the async node to completion on an event loop of its own (a helper thread when the caller
already runs one), so use one style per graph and prefer the async one in servers.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import get_runtime

from graph.context import Context
from graph.model import resolve_model
from graph.nodes.agent import agent
from graph.nodes.approval import approval
from graph.nodes.identity import identity, refuse
from graph.nodes.retrieve import retrieve
from graph.nodes.tools import tools as tools_node
from graph.state import InputState, State
from graph.toolset import TOOL_NODES, Toolset, default_toolset

Node = Callable[[State, RunnableConfig, Any], Awaitable[Any]]


def _run_to_completion(awaitable: Awaitable[Any]) -> Any:
    """Run a node's coroutine from synchronous code (`graph.invoke`)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # The node's task copies this thread's context: LangGraph's config and interrupts
        # keep working inside.
        return asyncio.run(awaitable)  # type: ignore[arg-type]
    # Called synchronously from inside an event loop: run on a helper thread instead.
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, awaitable).result()


def _node(name: str, node: Node) -> RunnableLambda:
    """`node(state, config, runtime)` as a runnable with an async form and a synchronous one."""

    async def afunc(state: State, config: RunnableConfig) -> Any:
        return await node(state, config, get_runtime(Context))

    def func(state: State, config: RunnableConfig) -> Any:
        return _run_to_completion(node(state, config, get_runtime(Context)))

    return RunnableLambda(func, afunc, name=name)


def _toolset(tools: Sequence[BaseTool] | Toolset | None) -> Toolset:
    if tools is None:
        return default_toolset()
    return tools if isinstance(tools, Toolset) else Toolset.of(tools)


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    *,
    tools: Sequence[BaseTool] | Toolset | None = None,
    model: str | BaseChatModel | None = None,
    interrupt_before: Sequence[str] | None = None,
) -> CompiledStateGraph[State, Context, InputState, State]:
    """The compiled agent over `tools` with `model`; pass a checkpointer for persistence (the
    server brings its own). A bad tool list or model spec raises here, with a clear message."""
    toolset = _toolset(tools)
    chat = resolve_model(model)

    async def agent_node(state: State, config: RunnableConfig, runtime: Any) -> Any:
        return await agent(state, config, toolset=toolset, model=chat)

    async def tools_step(state: State, config: RunnableConfig, runtime: Any) -> Any:
        return await tools_node(state, config, runtime, toolset=toolset)

    async def approval_step(state: State, config: RunnableConfig, runtime: Any) -> Any:
        return await approval(state, config, runtime, toolset=toolset)

    async def retrieve_step(state: State, config: RunnableConfig, runtime: Any) -> Any:
        return await retrieve(state, config, runtime, toolset=toolset)

    async def refuse_step(state: State, config: RunnableConfig, runtime: Any) -> Any:
        return await refuse(state, config, runtime, toolset=toolset)

    async def identity_step(state: State, config: RunnableConfig, runtime: Any) -> Any:
        return await identity(state, config, runtime)

    builder = StateGraph(State, context_schema=Context, input_schema=InputState)
    builder.add_node(
        "identity", _node("identity", identity_step), destinations=("agent", "refuse", END)
    )
    builder.add_node("agent", _node("agent", agent_node))
    builder.add_node("tools", _node("tools", tools_step))
    builder.add_node("approval", _node("approval", approval_step))
    builder.add_node("retrieve", _node("retrieve", retrieve_step))
    # `refuse` hands the owner's unanswered tool call back to its node (see its docstring).
    builder.add_node("refuse", _node("refuse", refuse_step), destinations=("agent", *TOOL_NODES))

    builder.add_edge(START, "identity")
    builder.add_conditional_edges("agent", toolset.route_after_agent, [*TOOL_NODES, END])
    for name in TOOL_NODES:
        builder.add_conditional_edges(name, toolset.route_after_tool_node, [*TOOL_NODES, "agent"])
    return builder.compile(
        checkpointer=checkpointer, interrupt_before=list(interrupt_before or []), name="agent"
    )


graph = build_graph()
