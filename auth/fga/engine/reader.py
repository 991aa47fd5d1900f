"""Tuple reading for one request: stored tuples plus contextual tuples, filtered by the model.

The store implements `TupleSource`; `RequestReader` adds the request's contextual tuples,
drops tuples the model no longer allows (OpenFGA's FilterInvalidTuples), and caches each read
for the rest of the request so that sibling branches of a resolution share their queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from auth.fga.client import TupleKey
from auth.fga.engine.typesystem import TypeSystem
from auth.fga.engine.validation import is_valid_for_read, split_object_relation


class TupleSource(Protocol):
    """What the engine needs from a store (one store, any model version)."""

    def read_object_relation(self, object: str, relation: str) -> list[TupleKey]:
        """Every tuple `object#relation@*`."""
        ...

    def read_user_tuple(self, object: str, relation: str, user: str) -> TupleKey | None:
        """The tuple `object#relation@user`, if stored."""
        ...

    def objects_of_type(self, object_type: str) -> Iterable[str]:
        """Every distinct object of a type that appears as the object of some tuple."""
        ...

    def read_by_user(self, users: Sequence[str], object_type: str, relation: str) -> list[TupleKey]:
        """Tuples `object_type:*#relation@u` for each u in users (reverse lookups)."""
        ...


class EmptySource:
    """A store with no tuples (the second pass of the suite sends everything as contextual)."""

    def read_object_relation(self, object: str, relation: str) -> list[TupleKey]:
        return []

    def read_user_tuple(self, object: str, relation: str, user: str) -> TupleKey | None:
        return None

    def objects_of_type(self, object_type: str) -> Iterable[str]:
        return ()

    def read_by_user(self, users: Sequence[str], object_type: str, relation: str) -> list[TupleKey]:
        return []


@dataclass(frozen=True)
class Edge:
    """A tuple as the resolvers use it: the user split into object and relation once."""

    key: TupleKey
    user_object: str  # `group:1` of `group:1#member`, or the user itself
    user_relation: str  # `member`, or "" for an object or a wildcard
    user_type: str
    wildcard: bool


def to_edge(tk: TupleKey) -> Edge:
    user_object, user_relation = split_object_relation(tk.user)
    user_type, _, user_id = user_object.partition(":")
    return Edge(tk, user_object, user_relation, user_type, user_id == "*" and not user_relation)


class RequestReader:
    """Reads for one request under one model: contextual tuples first, then stored ones."""

    def __init__(
        self, ts: TypeSystem, source: TupleSource, contextual: Sequence[TupleKey] = ()
    ) -> None:
        self.ts = ts
        self.source = source
        self._ctx_by_or: dict[tuple[str, str], list[TupleKey]] = {}
        self._ctx_by_type: dict[str, set[str]] = {}
        self._ctx_by_user_rel: dict[tuple[str, str, str], list[TupleKey]] = {}
        for tk in contextual:
            self._ctx_by_or.setdefault((tk.object, tk.relation), []).append(tk)
            self._ctx_by_type.setdefault(tk.object.split(":", 1)[0], set()).add(tk.object)
            otype = tk.object.split(":", 1)[0]
            self._ctx_by_user_rel.setdefault((tk.user, otype, tk.relation), []).append(tk)
        self._reads: dict[tuple[str, str], list[Edge]] = {}
        shapes = getattr(ts, "_valid_shapes", None)
        if shapes is None:
            shapes = {}
            ts._valid_shapes = shapes  # type: ignore[attr-defined]
        self._valid_shapes: dict[tuple[object, ...], bool] = shapes
        self.query_count = 0

    def _is_valid(self, tk: TupleKey) -> bool:
        """Whether the model allows the tuple. Without a condition context, validity depends
        only on the tuple's shape (types, relations, wildcard, condition name), so it is
        computed once per shape and model; a tuple with a context is validated in full."""
        if tk.condition_context:
            return is_valid_for_read(self.ts, tk)
        obj_type, _, obj_id = tk.object.partition(":")
        user_object, _, user_relation = tk.user.partition("#")
        user_type, _, user_id = user_object.partition(":")
        shape = (
            obj_type,
            obj_id == "*",
            tk.relation,
            user_type,
            user_relation,
            user_id == "*",
            tk.condition_name or "",
        )
        ok = self._valid_shapes.get(shape)
        if ok is None:
            ok = is_valid_for_read(self.ts, tk)
            self._valid_shapes[shape] = ok
        return ok

    def read(self, object: str, relation: str) -> list[Edge]:
        """Valid tuples `object#relation@*` (contextual ones first)."""
        cache_key = (object, relation)
        cached = self._reads.get(cache_key)
        if cached is not None:
            return cached
        self.query_count += 1
        tuples = list(self._ctx_by_or.get(cache_key, ()))
        tuples.extend(self.source.read_object_relation(object, relation))
        edges = [to_edge(tk) for tk in tuples if self._is_valid(tk)]
        self._reads[cache_key] = edges
        return edges

    def read_user_tuple(self, object: str, relation: str, user: str) -> Edge | None:
        """The valid tuple `object#relation@user`, contextual first."""
        cached = self._reads.get((object, relation))
        candidates: list[TupleKey] = []
        if cached is not None:
            return next((e for e in cached if e.key.user == user), None)
        for tk in self._ctx_by_or.get((object, relation), ()):
            if tk.user == user:
                candidates.append(tk)
        if not candidates:
            self.query_count += 1
            stored = self.source.read_user_tuple(object, relation, user)
            if stored is not None:
                candidates.append(stored)
        for tk in candidates:
            if self._is_valid(tk):
                return to_edge(tk)
        return None

    def objects_of_type(self, object_type: str) -> list[str]:
        """Distinct objects of a type seen in stored or contextual tuples."""
        seen = dict.fromkeys(self._ctx_by_type.get(object_type, ()))
        seen.update(dict.fromkeys(self.source.objects_of_type(object_type)))
        return list(seen)

    def read_by_user(self, users: Sequence[str], object_type: str, relation: str) -> list[Edge]:
        """Valid tuples `object_type:?#relation@u` for u in users."""
        self.query_count += 1
        out: list[TupleKey] = []
        for u in users:
            out.extend(self._ctx_by_user_rel.get((u, object_type, relation), ()))
        out.extend(self.source.read_by_user(users, object_type, relation))
        return [to_edge(tk) for tk in out if self._is_valid(tk)]
