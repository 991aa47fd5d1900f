"""Serving an ASGI app with uvicorn inside a program that owns the process (and its signals)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: whoever embeds it decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    app: Any, *, name: str = "app", start_seconds: float = 10.0
) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a port the OS picks) in this event loop, without its lifespan;
    yields the base URL and stops the server on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"serving-{name}")
    try:
        deadline = time.monotonic() + start_seconds
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} could not be served on 127.0.0.1")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, start_seconds)
        sock.close()
