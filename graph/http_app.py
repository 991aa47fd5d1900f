"""The HTTP app that `langgraph.json` mounts into the LangGraph server (custom routes).

Routes: a health check, the interrupt schemas (so Studio and other clients can render and answer
a pending interrupt), and the CIBA ping callback with its lifespan (the approval poller).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from graph import callbacks
from graph.model import describe
from settings import get_settings

INTERRUPTS_PATH = "/warrant/interrupts"


async def health(request: Request) -> JSONResponse:
    """Liveness plus what this agent runs with (names only, no configuration secrets)."""
    from graph.routing import available_nodes, bindable_tools

    return JSONResponse(
        {
            "ok": True,
            "model": describe(get_settings().model),
            "tools": [tool.name for tool in bindable_tools()],
            "nodes": sorted(available_nodes()),
        }
    )


async def interrupts(request: Request) -> JSONResponse:
    """Each interrupt type's JSON schema and the resume values it accepts."""
    from graph.interrupts import RESUME_VALUES, interrupt_schemas

    return JSONResponse(
        {
            name: {"schema": schema, "resume": RESUME_VALUES[name]}
            for name, schema in interrupt_schemas().items()
        }
    )


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    async with callbacks.lifespan(app):
        yield


def create_app() -> Starlette:
    """The Starlette app with Warrant's routes and the approval poller's lifespan."""
    return Starlette(
        routes=[
            Route("/warrant/health", health),
            Route(INTERRUPTS_PATH, interrupts),
            *callbacks.routes,
        ],
        lifespan=_lifespan,
    )


app = create_app()
