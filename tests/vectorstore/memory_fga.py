"""An in-memory FGAClient for the document model, written independently of the FGA engine.

It is the tests' oracle (who may see what, computed the plain way) and their fault injector:
it can fail, be slow, cut list_objects short, answer nonsense, or run a hook between calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from auth.fga.client import CheckRequest, CheckResult, TupleKey


class MemoryFGA:
    def __init__(self) -> None:
        self.tuples: set[tuple[str, str, str]] = set()
        self.calls: list[str] = []
        self.fail: Exception | None = None
        self.delay: float = 0.0
        self.list_limit: int | None = None
        self.before_batch_check: Callable[[], Awaitable[None] | None] | None = None
        self.batch_answer: Callable[[list[CheckResult]], Any] | None = None

    # -- the model: doc can_view = owner or viewer or viewer from parent -----------------

    def _users_of(self, relation: str, obj: str) -> set[str]:
        return {u for (u, r, o) in self.tuples if r == relation and o == obj}

    def _in_userset(self, user: str, entries: set[str]) -> bool:
        for entry in entries:
            if entry == user or entry == "user:*":
                return True
            if entry.endswith("#member") and (user in self._users_of("member", entry[:-7])):
                return True
        return False

    def _folder_viewer(self, user: str, folder: str, seen: frozenset[str] = frozenset()) -> bool:
        if folder in seen:
            return False
        if self._in_userset(user, self._users_of("viewer", folder)):
            return True
        if user in self._users_of("owner", folder):
            return True
        return any(
            self._folder_viewer(user, parent, seen | {folder})
            for parent in self._users_of("parent", folder)
        )

    def can_view(self, user: str, obj: str) -> bool:
        if user in self._users_of("owner", obj):
            return True
        if self._in_userset(user, self._users_of("viewer", obj)):
            return True
        return any(self._folder_viewer(user, f) for f in self._users_of("parent", obj))

    def visible_docs(self, user: str) -> set[str]:
        docs = {o for (_, _, o) in self.tuples if o.startswith("doc:")}
        return {d for d in docs if self.can_view(user, d)}

    # -- FGAClient ------------------------------------------------------------------------

    async def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail

    async def check(self, user, relation, object, *, contextual_tuples=(), context=None) -> bool:
        await self._enter("check")
        assert relation == "can_view"
        return self.can_view(user, object)

    async def batch_check(self, checks: Sequence[CheckRequest]) -> list[CheckResult]:
        await self._enter("batch_check")
        if self.before_batch_check is not None:
            maybe = self.before_batch_check()
            if maybe is not None:
                await maybe
        results = [CheckResult(self.can_view(c.user, c.object)) for c in checks]
        if self.batch_answer is not None:
            return self.batch_answer(results)
        return results

    async def list_objects(self, user, relation, type, *, contextual_tuples=(), context=None):
        await self._enter("list_objects")
        assert relation == "can_view" and type == "doc"
        found = sorted(self.visible_docs(user))
        return found[: self.list_limit] if self.list_limit is not None else found

    async def list_users(
        self, object, relation, user_filters, *, contextual_tuples=(), context=None
    ):
        await self._enter("list_users")
        raise NotImplementedError

    async def read(self, user=None, relation=None, object=None) -> list[TupleKey]:
        await self._enter("read")
        return [
            TupleKey(u, r, o)
            for (u, r, o) in sorted(self.tuples)
            if (user is None or u == user)
            and (relation is None or r == relation)
            and (object is None or o == object)
        ]

    async def write(self, writes: Sequence[TupleKey] = (), deletes: Sequence[TupleKey] = ()):
        await self._enter("write")
        for t in writes:
            key = (t.user, t.relation, t.object)
            if key in self.tuples:
                raise ValueError(f"tuple {key} already exists")
        for t in deletes:
            key = (t.user, t.relation, t.object)
            if key not in self.tuples:
                raise ValueError(f"tuple {key} does not exist")
        for t in deletes:
            self.tuples.discard((t.user, t.relation, t.object))
        for t in writes:
            self.tuples.add((t.user, t.relation, t.object))

    async def close(self) -> None:
        return None

    def add(self, user: str, relation: str, obj: str) -> None:
        self.tuples.add((user, relation, obj))
