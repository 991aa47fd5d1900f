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
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import typer
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.types import Command
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel

from auth.errors import AuthError, ProviderUnavailable
from cli.errors import explain
from graph.context import Context, signed_in_context
from settings import get_settings

QUIT = frozenset({"/quit", "/exit", "/q"})
EXIT_INTERRUPTED = 3
# What may be typed at the `resume>` prompt: a nudge to check again, or a cancel (doing less).
# Anything else is probably a new message (or an attempt to approve by typing "yes"), which a
# resume would silently swallow: the chat explains instead.
NUDGES = frozenset({"", "continue", "done", "ok", "check", "again", "retry"})
CANCELS = frozenset({"cancel", "cancelled", "canceled", "abort", "no", "skip"})


def _clock(epoch: Any) -> str | None:
    """An interrupt's `expires_at` (epoch seconds) as a time of day, for people."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or epoch <= 0:
        return str(epoch) if isinstance(epoch, str) and epoch else None
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


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
            self.console.print(f"[red]{escape(explain(exc))}[/red]", highlight=False)
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
            connection = str(item.get("connection") or "the")
            missing = [str(s) for s in item.get("missing_scopes") or []]
            need = f" with access to {', '.join(missing)}" if missing else ""
            self.console.print(
                Panel(
                    f"The agent needs your {connection} account{need}, and it is not connected."
                    f"\n\nOpen this page, log in and allow access:\n{item.get('connect_url')}"
                    "\n\nThen press Enter here to continue (or type cancel).",
                    title="connect an account",
                    border_style="yellow",
                )
            )
        elif kind == "approval_pending":
            when = _clock(item.get("expires_at"))
            ask = str(
                item.get("message")
                or f"Approve '{item.get('binding_message')}' on your authenticator"
                + (f" before {when}." if when else ".")
            )
            issuer = get_settings().issuer_url
            self.console.print(
                Panel(
                    f"{ask}\n\nOn the devstack, your authenticator is `warrant approvals list` "
                    f"then `warrant approvals approve ID` (or deny ID), or the page "
                    f"{issuer}approvals. Typing here approves nothing.\n\n"
                    "Press Enter to check again once you have answered (or type cancel).",
                    title="approval needed",
                    border_style="yellow",
                )
            )
        else:
            body = json.dumps(item, indent=2, default=str)
            self.console.print(Panel(body, title="paused", border_style="yellow"))

    def _paused_hint(self) -> None:
        self.console.print(f"paused: resume with `warrant chat --thread {self.thread_id}`")

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
                if interrupts:
                    self._paused_hint()
                return
            command = text.strip()
            if command in QUIT:
                if interrupts:
                    self._paused_hint()
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
                word = command.lower()
                if word not in NUDGES and word not in CANCELS:
                    self.console.print(
                        "This conversation is waiting (see above): press Enter to check again, "
                        "type cancel to give up, or /new to start another conversation."
                    )
                    continue
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
        console.print(f"[red]{escape(explain(exc))}[/red]", highlight=False)
        return 1
    async with open_checkpointer() as saver:
        session = ChatSession(
            build_graph(checkpointer=saver), context, console, thread or str(uuid.uuid4())
        )
        if thread:
            problem = await _check_thread(session, resume is not None)
            if problem:
                console.print(f"[red]{problem}[/red]", highlight=False)
                return 1
        if not messages and resume is None:
            await session.interactive(lambda prompt: console.input(f"[bold]{prompt}[/bold]"))
            return 0
        interrupts: list[dict[str, Any]] = []
        if resume is not None:
            interrupts = await session.resume(resume)
        for text in messages:
            interrupts = await session.send(text)
        if interrupts:
            session._paused_hint()
            return EXIT_INTERRUPTED
        return 0


async def _check_thread(session: ChatSession, resuming: bool) -> str | None:
    """Why `--thread` cannot be used as asked (None when it can); says when it is a new one.

    Another user's thread is refused before anything of it is shown (the graph would refuse to
    run it anyway, but its pending interrupts name that user's actions).
    """
    state = await session.graph.aget_state(session.config)
    values = state.values if isinstance(state.values, dict) else {}
    owner = values.get("user")
    if isinstance(owner, dict) and owner.get("sub") and owner["sub"] != session.context.user_id:
        return "This conversation belongs to another user; it cannot be continued by you."
    if resuming and not state.interrupts:
        if not values:
            return f"There is no conversation {session.thread_id} to resume."
        return f"Conversation {session.thread_id} is not waiting for anything to resume."
    if not values:
        session.console.print(f"No conversation {session.thread_id} yet: starting it.")
    return None


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
