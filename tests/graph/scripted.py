"""A chat model double that replies with scripted messages (to test malformed tool calls)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from graph.offline_model import OfflineChatModel


class ScriptedModel(OfflineChatModel):
    """Replies with `script` in order, then falls back to the offline model's own reply."""

    script: list[AIMessage] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        if self.script:
            return ChatResult(generations=[ChatGeneration(message=self.script.pop(0))])
        return super()._generate(messages, stop, run_manager, **kwargs)
