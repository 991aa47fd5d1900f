"""Shared pieces of the FGA API tests: a model, an in-thread uvicorn server on an ephemeral port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

# `fga model transform` of:
#   type user / type group: member [user] / type document: blocked [user],
#   owner [user], viewer [user, user:*, group#member, user with weekday] or owner but not blocked
#   condition weekday(day: string) { day != "sunday" }
MODEL: dict[str, Any] = {
    "schema_version": "1.1",
    "type_definitions": [
        {"type": "user"},
        {
            "type": "group",
            "relations": {"member": {"this": {}}},
            "metadata": {
                "relations": {"member": {"directly_related_user_types": [{"type": "user"}]}}
            },
        },
        {
            "type": "document",
            "relations": {
                "blocked": {"this": {}},
                "owner": {"this": {}},
                "viewer": {
                    "difference": {
                        "base": {
                            "union": {
                                "child": [{"this": {}}, {"computedUserset": {"relation": "owner"}}]
                            }
                        },
                        "subtract": {"computedUserset": {"relation": "blocked"}},
                    }
                },
            },
            "metadata": {
                "relations": {
                    "blocked": {"directly_related_user_types": [{"type": "user"}]},
                    "owner": {"directly_related_user_types": [{"type": "user"}]},
                    "viewer": {
                        "directly_related_user_types": [
                            {"type": "user"},
                            {"type": "user", "wildcard": {}},
                            {"type": "group", "relation": "member"},
                            {"type": "user", "condition": "weekday"},
                        ]
                    },
                }
            },
        },
    ],
    "conditions": {
        "weekday": {
            "name": "weekday",
            "expression": 'day != "sunday"',
            "parameters": {"day": {"type_name": "TYPE_NAME_STRING"}},
        }
    },
}


class ServerThread:
    """Serve an ASGI app with uvicorn in a daemon thread on 127.0.0.1, port chosen by the OS."""

    def __init__(self, app: Starlette) -> None:
        self.config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[ServerThread]:
    with ServerThread(app) as server:
        yield server
