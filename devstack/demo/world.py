"""What every demo step works with: the running devstack, the graph, and alice's and bob's logins.

Logins are real (the provider's authorization code + PKCE flow) and happen once per user, on
first use: a step that needs bob logs bob in, so a failing login fails the steps that need it
and nothing else. Every token the demo learns is remembered, so the run can prove that none of
them reached the checkpoints or the report.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.types import Command

from devstack.identity.autologin import TokenSet, login
from devstack.server import DevStack
from graph.context import Context
from graph.offline_model import message_text
from settings import Settings

USERS = {"alice": "alice@example.com", "bob": "bob@example.com"}
LOGIN_SCOPE = "openid profile email offline_access"


class DemoError(Exception):
    """A demo step could not go on; the message is the step's detail line (no token in it)."""


class DemoWorld:
    """The devstack, the agent graph (SQLite checkpoints) and the users, for the steps to share."""

    def __init__(
        self, stack: DevStack, settings: Settings, graph: Any, checkpoint_path: Path
    ) -> None:
        self.stack = stack
        self.settings = settings
        self.graph = graph
        self.checkpoint_path = checkpoint_path
        self._tokens: dict[str, TokenSet] = {}
        self._contexts: dict[str, Context] = {}
        self._lock = asyncio.Lock()
        self._secrets: set[str] = set()
        self._threads = itertools.count(1)
        self.warm_up: asyncio.Future[Any] | None = None  # the embedding model, loading

    # users ------------------------------------------------------------------------------------

    @staticmethod
    def email(who: str) -> str:
        return USERS[who]

    def password(self, who: str) -> str:
        return getattr(self.settings, f"{who}_password").get_secret_value()

    async def tokens(self, who: str) -> TokenSet:
        """`who`'s tokens from a real login at the devstack provider (once per demo)."""
        async with self._lock:
            found = self._tokens.get(who)
            if found is None:
                try:
                    found = await login(
                        self.stack.issuer,
                        USERS[who],
                        self.password(who),
                        client_id=self.settings.cli_client_id,
                        scope=LOGIN_SCOPE,
                        audience=self.settings.audience,
                    )
                except Exception as exc:  # LoginRequired, ProviderUnavailable: say which
                    raise DemoError(f"{who} could not log in: {exc}") from None
                self.remember(found.access_token, found.refresh_token, found.id_token)
                self._tokens[who] = found
            return found

    async def context(self, who: str) -> Context:
        """The runtime context for `who`, built as `warrant chat` builds it: from the validated
        access token (signature, issuer, audience, expiry) and the provider's userinfo."""
        if who not in self._contexts:
            from graph.context import signed_in_context

            tokens = await self.tokens(who)
            try:
                self._contexts[who] = await signed_in_context(tokens.access_token)
            except Exception as exc:
                raise DemoError(f"{who}'s access token was not accepted: {exc}") from None
        return self._contexts[who]

    # secrets ----------------------------------------------------------------------------------

    def remember(self, *secrets: str | None) -> None:
        """Tokens the demo saw: none may appear in checkpoints, answers or the report."""
        self._secrets.update(s for s in secrets if s)

    @property
    def secrets(self) -> list[str]:
        return sorted(self._secrets)

    def checkpoint_bytes(self) -> bytes:
        """Every byte the checkpointer wrote: the SQLite file and its write-ahead log."""
        files = sorted(self.checkpoint_path.parent.glob(self.checkpoint_path.name + "*"))
        return b"".join(path.read_bytes() for path in files if path.is_file())

    def chroma_bytes(self) -> bytes:
        """Every byte of the document store's folder (SQLite, HNSW segment files)."""
        folder = self.settings.data_dir / "chroma"
        if not folder.is_dir():
            return b""
        return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())

    async def assert_no_token_in_chroma(self) -> int:
        """Raise `DemoError` if a token the demo saw is in the Chroma folder; its size."""
        stored = await asyncio.to_thread(self.chroma_bytes)
        leaked = [s for s in self.secrets if s.encode() in stored]
        if leaked:
            raise DemoError(f"{len(leaked)} token(s) found in the Chroma folder")
        if not stored:
            raise DemoError("the Chroma folder scan found nothing to scan")
        return len(stored)

    # conversations ----------------------------------------------------------------------------

    def thread(self, name: str) -> dict[str, Any]:
        """A config for a fresh thread of this demo."""
        return {"configurable": {"thread_id": f"demo-{name}-{next(self._threads)}"}}

    async def run(self, who: str, payload: Any, config: dict[str, Any]) -> dict[str, Any]:
        """One graph run as `who`: a message (text) or a `Command(resume=...)`."""
        if isinstance(payload, str):
            payload = {"messages": [("user", payload)]}
        elif not isinstance(payload, (dict, Command)):
            raise TypeError(f"unexpected payload {type(payload).__name__}")
        return await self.graph.ainvoke(payload, config, context=await self.context(who))

    async def answer(self, who: str, question: str, name: str = "ask") -> str:
        """`who` asks `question` on a new thread; the agent's final answer (no interrupt)."""
        out = await self.run(who, question, self.thread(name))
        if out.get("__interrupt__"):
            kinds = ", ".join(str(i.value.get("type", "?")) for i in out["__interrupt__"])
            raise DemoError(f"{who}'s question {question!r} stopped at an interrupt ({kinds})")
        return last_answer(out)


def interrupts(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The interrupt payloads a run stopped at (dicts only)."""
    return [i.value for i in out.get("__interrupt__", ()) if isinstance(i.value, dict)]


def last_answer(out: dict[str, Any]) -> str:
    """The text of the run's last AI message ("" when there is none)."""
    for message in reversed(out.get("messages", [])):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return message_text(message)
        if isinstance(message, BaseMessage) and message.type == "human":
            break
    return ""
