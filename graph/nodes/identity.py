"""The `identity` and `refuse` nodes: record who the thread acts for, refuse anyone else.

`identity` runs first on every new input. The first run of a thread records the caller; later
runs must come from the same user (or from no user at all: a callback or resumer acting for the
recorded one). A different caller's messages are taken back out of the thread before `refuse`
fails the run, so nobody can write into another user's conversation.
"""

from __future__ import annotations

import logging
from typing import Literal

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.context import Context
from graph.identity import IdentityMismatch, NoIdentity, acting_user, caller_identity
from graph.routing import route_after_tool_node
from graph.state import State
from graph.toolset import Toolset

log = logging.getLogger(__name__)


def _trailing_human_ids(state: State) -> list[str]:
    """Ids of the messages this run's input appended (the human turn at the end)."""
    ids = []
    for message in reversed(state["messages"]):
        if not isinstance(message, HumanMessage):
            break
        if message.id:
            ids.append(message.id)
    return ids


async def identity(
    state: State, config: RunnableConfig, runtime: Runtime[Context]
) -> Command[Literal["agent", "refuse", "__end__"]]:
    """Record the caller on a thread's first run; check it on every later run."""
    recorded = state.get("user")
    try:
        caller = caller_identity(config, runtime)
    except NoIdentity as exc:
        return Command(goto=END, update={"messages": [AIMessage(content=str(exc))]})
    except IdentityMismatch:
        caller = None
        mismatch = True
    else:
        mismatch = bool(recorded and caller and caller["sub"] != recorded["sub"])
    if mismatch:
        log.warning("refused a run on a thread that another user owns")
        removals = [RemoveMessage(id=i) for i in _trailing_human_ids(state)]
        return Command(goto="refuse", update={"messages": removals})
    if not recorded:
        if caller is None:
            return Command(goto=END, update={"messages": [AIMessage(content=str(NoIdentity()))]})
        log.info("thread acts for user %s", caller["sub"])
        return Command(goto="agent", update={"user": caller})
    return Command(goto="agent")


async def refuse(
    state: State,
    config: RunnableConfig,
    runtime: Runtime[Context],
    *,
    toolset: Toolset | None = None,
) -> Command[Literal["agent", "tools", "approval", "retrieve"]]:
    """Fail the run for a caller who is not the recorded user (the error says why).

    The refused input started a new run, which dropped the owner's pending interrupt (an
    approval, a connection): when the owner next resumes, this node hands the still-unanswered
    tool call back to its node, so the owner's request is picked up again instead of lost.
    """
    acting_user(state, config, runtime)  # raises IdentityMismatch for anyone but the owner
    return Command(goto=route_after_tool_node(dict(state), toolset))
