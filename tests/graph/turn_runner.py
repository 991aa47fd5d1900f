"""Runs one turn (a message or a resume) of the agent on a SQLite checkpoint, in its own process.

Used by the tests to prove that a conversation continues in a new process from the SQLite file
alone. Prints one JSON object: the interrupts, the last message, the recorded user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from langchain_core.messages import ToolMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from graph.agent import build_graph
from graph.context import Context


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--thread", required=True)
    parser.add_argument("--message")
    parser.add_argument("--resume")
    parser.add_argument("--user-id")
    parser.add_argument("--email")
    parser.add_argument("--sync", action="store_true", help="SqliteSaver and graph.invoke")
    args = parser.parse_args()
    context = Context(
        user_id=args.user_id,
        user_email=args.email,
        subject_token=os.environ.get("GRAPH_TEST_SUBJECT_TOKEN"),
    )
    payload = Command(resume=args.resume) if args.resume else {"messages": [("user", args.message)]}
    config = {"configurable": {"thread_id": args.thread}}
    try:
        if args.sync:
            with SqliteSaver.from_conn_string(args.db) as saver:
                out = build_graph(checkpointer=saver).invoke(payload, config, context=context)
        else:
            async with AsyncSqliteSaver.from_conn_string(args.db) as saver:
                graph = build_graph(checkpointer=saver)
                out = await graph.ainvoke(payload, config, context=context)
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return
    print(
        json.dumps(
            {
                "interrupts": [i.value for i in out.get("__interrupt__", [])],
                "last": str(out["messages"][-1].content),
                "user": out.get("user"),
                "tool_results": [m.content for m in out["messages"] if isinstance(m, ToolMessage)],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
