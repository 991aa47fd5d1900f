"""`LocalFGA`: the `FGAClient` answered in-process by the embedded engine over a SQLite store.

Every call runs its SQLite and resolution work in a worker thread (`asyncio.to_thread`) so a
large list or a slow disk never blocks the event loop; the store serializes its own SQLite
access. Errors are `auth.fga.errors.FGAError` with OpenFGA's codes (fail closed: callers that
catch them must treat the answer as "not allowed").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auth.fga import engine
from auth.fga.client import CheckRequest, CheckResult, TupleKey
from auth.fga.engine.typesystem import TypeSystem
from auth.fga.store import MAX_PAGE_SIZE, Store

DEFAULT_STORE_NAME = "warrant"


class LocalFGA:
    """The embedded engine behind the `FGAClient` interface, bound to one store.

    `model_id` pins a model version; None means "the latest model of the store" at each call,
    as OpenFGA does when a request names no model.
    """

    def __init__(self, store: Store, store_id: str, model_id: str | None = None) -> None:
        self.store = store
        self.store_id = store_id
        self.model_id = model_id
        self._owns_store = False

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        store_id: str | None = None,
        model_id: str | None = None,
        store_name: str = DEFAULT_STORE_NAME,
    ) -> LocalFGA:
        """Open (or create) the SQLite database and its store; defaults come from settings.

        Without a store id, the first store named `store_name` is used, or created.
        """
        from settings import get_settings

        settings = get_settings()
        if path is None:
            path = settings.path("fga.sqlite3")
        store = Store(path)
        store_id = store_id or settings.fga_store_id
        model_id = model_id or settings.fga_model_id
        if store_id is None:
            existing = [s for s in store.list_stores() if s["name"] == store_name]
            store_id = existing[0]["id"] if existing else store.create_store(store_name)
        else:
            store.get_store(store_id)
        client = cls(store, store_id, model_id)
        client._owns_store = True
        return client

    @classmethod
    def in_memory(cls, model: dict[str, Any] | None = None) -> LocalFGA:
        """A throwaway client over an in-memory store (tests, demos); writes `model` if given."""
        store = Store(":memory:")
        client = cls(store, store.create_store(DEFAULT_STORE_NAME))
        client._owns_store = True
        if model is not None:
            client.store.write_model(client.store_id, model)
        return client

    # model management (not part of FGAClient, used by ingestion, the CLI and the devstack) -----

    async def write_model(self, model: dict[str, Any]) -> str:
        """Store a new model version (OpenFGA JSON); returns its id. Pinned clients stay pinned."""
        return await asyncio.to_thread(self.store.write_model, self.store_id, model)

    def _typesystem(self) -> TypeSystem:
        return self.store.typesystem(self.store_id, self.model_id)

    # FGAClient ---------------------------------------------------------------------------------

    async def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> bool:
        def run() -> bool:
            return engine.check(
                self._typesystem(),
                self.store.source(self.store_id),
                user,
                relation,
                object,
                contextual_tuples=contextual_tuples,
                context=context,
                deadline=engine.CHECK_DEADLINE_SECONDS,
            )

        return await asyncio.to_thread(run)

    async def batch_check(self, checks: Sequence[CheckRequest]) -> list[CheckResult]:
        def run() -> list[CheckResult]:
            return engine.batch_check(self._typesystem(), self.store.source(self.store_id), checks)

        return await asyncio.to_thread(run)

    async def list_objects(
        self,
        user: str,
        relation: str,
        type: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        def run() -> list[str]:
            return engine.list_objects(
                self._typesystem(),
                self.store.source(self.store_id),
                user,
                relation,
                type,
                contextual_tuples=contextual_tuples,
                context=context,
            )

        return await asyncio.to_thread(run)

    async def list_users(
        self,
        object: str,
        relation: str,
        user_filters: Sequence[str],
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        def run() -> list[str]:
            return engine.list_users(
                self._typesystem(),
                self.store.source(self.store_id),
                object,
                relation,
                user_filters,
                contextual_tuples=contextual_tuples,
                context=context,
            )

        return await asyncio.to_thread(run)

    async def read(
        self, user: str | None = None, relation: str | None = None, object: str | None = None
    ) -> list[TupleKey]:
        """Every tuple matching the filter (all pages), with OpenFGA's filter rules."""

        def run() -> list[TupleKey]:
            out: list[TupleKey] = []
            token: str | None = None
            while True:
                page, token = self.store.read(
                    self.store_id,
                    user=user,
                    relation=relation,
                    object=object,
                    page_size=MAX_PAGE_SIZE,
                    continuation_token=token,
                )
                out.extend(page)
                if not token:
                    return out

        return await asyncio.to_thread(run)

    async def write(
        self, writes: Sequence[TupleKey] = (), deletes: Sequence[TupleKey] = ()
    ) -> None:
        """Write and delete atomically (at most 100 tuples in all, as OpenFGA)."""
        await asyncio.to_thread(
            self.store.write, self.store_id, list(writes), list(deletes), self.model_id
        )

    async def close(self) -> None:
        if self._owns_store:
            # closing a SQLite connection may checkpoint its WAL: disk I/O, off the event loop
            await asyncio.to_thread(self.store.close)
