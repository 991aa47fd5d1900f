"""The custom app Aegra mounts: the routes and lifespan of `langgraph.json`'s `http.app`.

Aegra 0.6.x accepts only a FastAPI instance as its custom app; Warrant's (`graph/http_app.py`)
is Starlette. This wraps the same routes and lifespan (the ping callback, health, the approval
poller) in a FastAPI app, and adds what serving on several processes needs: wakes go through
the server's own API (`ServerResumer`), runs of dead replicas are recovered (`orphan_runs`),
and the run routes Aegra does not authorize are guarded (`run_guard`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from auth.approvals_claims import process_owner
from deploy.aegra_config import langgraph_entry
from deploy.orphan_runs import orphan_runs_lifespan
from deploy.run_guard import RunGuard
from deploy.server_resumer import ServerResumer
from graph.resumer import set_resumer
from settings import get_settings


def server_url() -> str:
    """How this process reaches its own API: `server_url`, else its host and port."""
    s = get_settings()
    return s.server_url or f"http://{s.serve_host}:{s.serve_port}"


def create_app(source: Any = None) -> FastAPI:
    """FastAPI app with `source`'s routes (default: what `langgraph.json` names) and lifespan."""
    source = source if source is not None else langgraph_entry("http", "app")
    inner = source.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from auth.approvals import close_all, get_ledger
        from auth.approvals_claims import claims_for

        s = get_settings()
        set_resumer(ServerResumer(server_url()))
        # Whatever this replica held in a previous life (killed mid-wake) is free again.
        await claims_for(await get_ledger()).release_owner(process_owner())
        async with contextlib.AsyncExitStack() as stack:
            if s.database_url:
                await stack.enter_async_context(
                    orphan_runs_lifespan(s.database_url, process_owner())
                )
            await stack.enter_async_context(inner(source))
            try:
                yield
            finally:
                set_resumer(None)
                await close_all()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.router.routes.extend(source.routes)
    app.add_middleware(RunGuard)
    return app


app = create_app()
