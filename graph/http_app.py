"""The HTTP app that `langgraph.json` mounts into the LangGraph server (custom routes).

It serves a health route here; other parts contribute routes (for example the CIBA ping
callback) through modules listed in `ROUTE_MODULES`, each exporting `routes: list[BaseRoute]`,
so that adding a route never means editing this file.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from graph.model import describe
from settings import get_settings

ROUTE_MODULES = ("graph.callbacks",)


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


def contributed_routes() -> list[BaseRoute]:
    """Routes from every module in `ROUTE_MODULES` that exists."""
    routes: list[BaseRoute] = []
    for module_name in ROUTE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        routes.extend(module.routes)
    return routes


def contributed_lifespans() -> list[Any]:
    """`lifespan` context managers from the route modules (e.g. the approval poller)."""
    found = []
    for module_name in ROUTE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        if callable(getattr(module, "lifespan", None)):
            found.append(module.lifespan)
    return found


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for lifespan in contributed_lifespans():
            await stack.enter_async_context(lifespan(app))
        yield


def create_app() -> Starlette:
    """The Starlette app with the health route and every contributed route (and lifespan)."""
    return Starlette(
        routes=[Route("/warrant/health", health), *contributed_routes()], lifespan=_lifespan
    )


app = create_app()
