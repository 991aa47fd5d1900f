"""The `retrieve` node: answers `search_internal_documents` calls with authorized passages only.

The graph routes a document search here instead of to the generic tools node: the search runs
for the acting user recorded in state at the start of the run (never for whoever a later message
claims to be), through `FGARetriever`, and each call gets a ToolMessage with the passages and
their sources, or a plain reason why there are none.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from graph.context import Context
from graph.identity import acting_user
from graph.routing import toolset_or_default
from graph.state import State
from graph.toolset import Toolset
from tools.documents import TOOL_NAME, search_documents

log = logging.getLogger(__name__)


async def answer_document_calls(
    message: AIMessage,
    user: str | None,
    *,
    fga: Any = None,
    store: Any = None,
) -> list[ToolMessage]:
    """One ToolMessage per `search_internal_documents` call in `message`, searched as `user`."""
    answers: list[ToolMessage] = []
    for call in message.tool_calls:
        if call.get("name") != TOOL_NAME:
            continue
        call_id = call.get("id") or ""
        question = (call.get("args") or {}).get("question")
        if not user:
            content, artifact, status = (
                "Document search is unavailable: your identity carries no email to check "
                "document access for.",
                {"sources": []},
                "error",
            )
        elif not isinstance(question, str):
            content, artifact, status = (
                "Document search needs a `question` (text).",
                {"sources": []},
                "error",
            )
        else:
            try:
                result = await search_documents(question, user, fga=fga, store=store)
            except Exception as exc:
                # A bug must not become a stack trace for the user, nor show anything.
                log.exception("document search failed unexpectedly")
                content, artifact, status = (
                    f"Document search failed unexpectedly ({type(exc).__name__}); "
                    "nothing was shown.",
                    {"sources": []},
                    "error",
                )
            else:
                content = result.render()
                artifact = {"sources": result.sources()}
                status = "error" if result.error else "success"
        answers.append(
            ToolMessage(
                content=content,
                tool_call_id=call_id,
                name=TOOL_NAME,
                artifact=artifact,
                status=status,
            )
        )
    return answers


async def retrieve(
    state: State,
    config: RunnableConfig,
    runtime: Runtime[Context],
    *,
    toolset: Toolset | None = None,
) -> dict[str, list[ToolMessage]]:
    """Answer the first pending document search, for the user recorded in state.

    `acting_user` refuses a caller other than the recorded user (as every acting node does); the
    search runs as the recorded user's email, the FGA user id (`user:<email>`).
    """
    user = acting_user(state, config, runtime)
    pending = toolset_or_default(toolset).pending_calls_for(state, "retrieve")
    if not pending:
        return {"messages": []}
    message = AIMessage(content="", tool_calls=[pending[0]])
    return {"messages": await answer_document_calls(message, user.get("email"))}
