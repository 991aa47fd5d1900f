"""A local OpenAI-compatible chat-completions server with scripted replies, for the tests.

It speaks the wire protocol `langchain-openai` speaks (`POST /v1/chat/completions`, JSON or
server-sent events when `stream` is true, tool calls with their arguments as a JSON string),
over real HTTP on 127.0.0.1. Each request takes the next scripted `Reply` (or a function of the
request that returns one); every request body is recorded, so a test can check what the model
was shown (tools bound, tool results, and that no token ever reached it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.token_vault.helpers import serve


@dataclass
class Call:
    """One tool call the model makes; `arguments` is sent verbatim when it is a string."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def wire(self, index: int) -> dict[str, Any]:
        args = self.arguments
        return {
            "index": index,
            "id": self.id or f"call_{uuid.uuid4().hex[:20]}",
            "type": "function",
            "function": {
                "name": self.name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }


@dataclass
class Reply:
    """What the model answers to one request: text and/or tool calls, or an HTTP error."""

    content: str | None = None
    calls: list[Call] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0  # seconds before answering (a slow or stuck model)


Script = Reply | Callable[[dict[str, Any]], Reply]


def say(text: str) -> Reply:
    return Reply(content=text)


def call(name: str, arguments: dict[str, Any] | str | None = None, id: str | None = None) -> Reply:
    return Reply(calls=[Call(name, {} if arguments is None else arguments, id)])


def calls(*items: Call) -> Reply:
    return Reply(calls=list(items))


def last_tool_results(body: dict[str, Any]) -> list[str]:
    """The tool results at the end of the conversation the model was sent."""
    out: list[str] = []
    for message in reversed(body.get("messages", [])):
        if message.get("role") != "tool":
            break
        content = message.get("content")
        out.append(content if isinstance(content, str) else json.dumps(content))
    return list(reversed(out))


class ScriptedOpenAI:
    """The server's script and what it received; `url` is the base URL (ends with `/v1`)."""

    def __init__(self) -> None:
        self.script: deque[Script] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""
        self._lock = threading.Lock()

    def add(self, *replies: Script) -> ScriptedOpenAI:
        with self._lock:
            self.script.extend(replies)
        return self

    @property
    def streamed(self) -> list[bool]:
        return [bool(r.get("stream")) for r in self.requests]

    def bound_tools(self, index: int = -1) -> list[str]:
        """The tool names bound in request `index`."""
        return [t["function"]["name"] for t in self.requests[index].get("tools", [])]

    def raw(self) -> str:
        """Everything every request carried (for token scans)."""
        return json.dumps([self.requests, self.headers])

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if not self.script:
                return Reply(content=None, status=599)
            item = self.script.popleft()
        return item(body) if callable(item) else item

    def app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"error": {"message": "body is not JSON"}}, status_code=400)
            self.headers.append(dict(request.headers))
            reply = self._next(body)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.status == 599:
                return JSONResponse(
                    {"error": {"message": "the test script has no reply left", "type": "test"}},
                    status_code=500,
                )
            if reply.status != 200:
                return JSONResponse(
                    {"error": {"message": "scripted failure", "type": "server_error"}},
                    status_code=reply.status,
                )
            model = str(body.get("model", "scripted"))
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return StreamingResponse(_sse(reply, model, usage), media_type="text/event-stream")
            return JSONResponse(_completion(reply, model))

        return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def _finish(reply: Reply) -> str:
    return "tool_calls" if reply.calls else "stop"


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.calls:
        message["tool_calls"] = [
            {k: v for k, v in c.wire(i).items() if k != "index"} for i, c in enumerate(reply.calls)
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
        "usage": USAGE,
    }


def _sse(reply: Reply, model: str, usage: bool) -> Iterator[str]:
    """The reply as OpenAI streams it: role, content pieces, tool-call pieces, finish, [DONE]."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        data = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    text = reply.content or ""
    for start in range(0, len(text), 16):
        yield chunk({"content": text[start : start + 16]})
    for index, item in enumerate(reply.calls):
        wire = item.wire(index)
        arguments = wire["function"]["arguments"]
        first = {**wire, "function": {"name": wire["function"]["name"], "arguments": ""}}
        yield chunk({"tool_calls": [first]})
        step = max(1, len(arguments) // 3 or 1)
        for start in range(0, len(arguments), step):
            piece = arguments[start : start + step]
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, _finish(reply))
    if usage:
        yield f"data: {json.dumps({**head, 'choices': [], 'usage': USAGE})}\n\n"
    yield "data: [DONE]\n\n"


def serve_openai() -> Iterator[ScriptedOpenAI]:
    """Start a `ScriptedOpenAI` on 127.0.0.1:<free port> (a generator for fixtures)."""
    server = ScriptedOpenAI()
    with serve(server.app()) as url:
        server.url = url + "/v1"
        yield server
