"""The graph's state: the conversation and the identity it acts for, and nothing secret.

Checkpoints persist this state verbatim (SQLite, Postgres, the LangGraph server's store), so
it holds no token of any kind: credentials ride in the runtime context or in the server-side
credential store (`auth/credentials.py`).
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class ActingUser(TypedDict):
    """Who the graph acts for: recorded at the start of the first run of a thread."""

    sub: str
    email: str | None


class InputState(TypedDict):
    """What a caller may send: messages only (the acting user is never taken from input)."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(TypedDict):
    """The whole state: the conversation plus the recorded acting user."""

    messages: Annotated[list[AnyMessage], add_messages]
    user: NotRequired[ActingUser | None]
