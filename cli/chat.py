"""`warrant chat`: talk to the agent in the terminal, with SQLite checkpoints and interrupts shown.

The chat acts for the user signed in with `warrant login`: the stored access token is validated
(issuer, audience, signature, expiry) and passed in the runtime context, never in state. Threads
live in the data folder's SQLite checkpoint file (or Postgres by `WARRANT_CHECKPOINT_URL`), so a
conversation interrupted for a GitHub connection or an approval can be resumed later, from
another process, with `warrant chat --thread ID`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import typer
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.types import Command
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from auth.errors import AuthError, ProviderUnavailable
from graph.context import Context, signed_in_context
from settings import get_settings

QUIT = frozenset({"/quit", "/exit", "/q"})
EXIT_INTERRUPTED = 3


@contextlib.asynccontextmanager
async def open_checkpointer(url: str | None = None) -> AsyncIterator[Any]:
    """The chat's checkpointer: SQLite in the data folder, a SQLite path, or a Postgres URL."""
    url = url if url is not None else get_settings().checkpoint_url
    if url and url.startswith(("postgres://", "postgresql://")):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = url.removeprefix("sqlite:///") if url else str(get_settings().path("checkpoints.sqlite"))
    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        yield saver


class ChatSession:
    """One terminal conversation: sends turns, renders progress, and handles interrupts."""

    def __init__(self, graph: Any, context: Context, console: Console, thread_id: str) -> None:
        self.graph = graph
        self.context = context
        self.console = console
        self.thread_id = thread_id

    @property
    def config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread_id}}

    async def send(self, text: str) -> list[dict[str, Any]]:
        """Send a user message; returns the interrupts the run stopped at (empty when done)."""
        return await self._run({"messages": [("user", text)]})

    async def resume(self, value: Any) -> list[dict[str, Any]]:
        """Resume an interrupted run; the graph re-checks with the provider whatever `value` is."""
        return await self._run(Command(resume=value))

    async def pending(self) -> list[dict[str, Any]]:
        """The interrupts this thread is waiting on."""
        state = await self.graph.aget_state(self.config)
        return [i.value for i in state.interrupts if isinstance(i.value, dict)]

    async def _run(self, payload: Any) -> list[dict[str, Any]]:
        try:
            async for update in self.graph.astream(
                payload, self.config, context=self.context, stream_mode="updates"
            ):
                self._render_update(update)
        except (AuthError, ProviderUnavailable) as exc:
            self.console.print(f"[red]{exc}[/red]")
            return []
        interrupts = await self.pending()
        for item in interrupts:
            self._render_interrupt(item)
        return interrupts

    def _render_update(self, update: dict[str, Any]) -> None:
        for node, change in update.items():
            if node == "__interrupt__" or not isinstance(change, dict):
                continue
            for message in change.get("messages", []) or []:
                if isinstance(message, AIMessage) and message.tool_calls:
                    for call in message.tool_calls:
                        args = json.dumps(call.get("args", {}), ensure_ascii=False)
                        self.console.print(f"[dim]-> {call['name']}({args})[/dim]")
                elif isinstance(message, AIMessage):
                    self.console.print(
                        Panel(Markdown(str(message.content)), title="warrant", title_align="left")
                    )
                elif isinstance(message, ToolMessage):
                    mark = "x" if message.status == "error" else "ok"
                    self.console.print(f"[dim]<- {message.name}: {mark}[/dim]")

    def _render_interrupt(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "connection_required":
            self.console.print(
                Panel(
                    f"{item.get('message', '')}\n\nOpen this page to connect your "
                    f"{item.get('connection')} account:\n{item.get('connect_url')}\n\n"
                    "Press Enter when done (or type cancel).",
                    title="connect an account",
                    border_style="yellow",
                )
            )
        elif kind == "approval_pending":
            self.console.print(
                Panel(
                    f"Approve on your authenticator: {item.get('binding_message')}\n"
                    f"(expires {item.get('expires_at')})\n\n"
                    "Press Enter to check again once you have answered.",
                    title="approval needed",
                    border_style="yellow",
                )
            )
        else:
            body = json.dumps(item, indent=2, default=str)
            self.console.print(Panel(body, title="paused", border_style="yellow"))

    async def interactive(self, ask: Callable[[str], str]) -> None:
        """The read-eval-print loop: messages, resumes, `/new`, `/thread`, `/quit`."""
        self.console.print(
            f"[bold]warrant chat[/bold] as {self.context.user_email or self.context.user_id} "
            f"(thread {self.thread_id}); /new, /thread, /quit"
        )
        interrupts = await self.pending()
        for item in interrupts:
            self._render_interrupt(item)
        while True:
            try:
                text = ask("resume> " if interrupts else "you> ")
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                return
            command = text.strip()
            if command in QUIT:
                return
            if command == "/thread":
                self.console.print(self.thread_id)
                continue
            if command == "/new":
                self.thread_id = str(uuid.uuid4())
                interrupts = []
                self.console.print(f"new thread {self.thread_id}")
                continue
            if interrupts:
                interrupts = await self.resume(command or "continue")
            elif command:
                interrupts = await self.send(command)


async def _chat(
    thread: str | None,
    messages: list[str],
    resume: str | None,
    console: Console,
    context: Context | None = None,
) -> int:
    from graph.agent import build_graph

    try:
        context = context or await signed_in_context()
    except (AuthError, ProviderUnavailable) as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    async with open_checkpointer() as saver:
        session = ChatSession(
            build_graph(checkpointer=saver), context, console, thread or str(uuid.uuid4())
        )
        if not messages and resume is None:
            await session.interactive(lambda prompt: console.input(f"[bold]{prompt}[/bold]"))
            return 0
        interrupts: list[dict[str, Any]] = []
        if resume is not None:
            interrupts = await session.resume(resume)
        for text in messages:
            interrupts = await session.send(text)
        if interrupts:
            console.print(f"paused: resume with `warrant chat --thread {session.thread_id}`")
            return EXIT_INTERRUPTED
        return 0


def chat(
    thread: str = typer.Option(None, "--thread", "-t", help="Continue this thread id."),
    message: list[str] = typer.Option(
        None, "--message", "-m", help="Send this message and exit (repeatable)."
    ),
    resume: str = typer.Option(
        None, "--resume", help="Resume the thread's pending interrupt with this value, and exit."
    ),
) -> None:
    """Chat with the agent as the signed-in user (SQLite checkpoints; interrupts are shown)."""
    console = Console()
    if resume is not None and not thread:
        console.print("[red]--resume needs --thread[/red]")
        raise typer.Exit(2)
    raise typer.Exit(asyncio.run(_chat(thread, list(message or []), resume, console)))


def register(app: typer.Typer) -> None:
    """Add `warrant chat` to the CLI."""
    app.command("chat")(chat)
