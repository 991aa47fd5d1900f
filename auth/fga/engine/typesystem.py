"""An authorization model (OpenFGA JSON, schema 1.1) compiled for fast lookups by the resolvers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auth.fga.errors import ErrorCode, FGAError, relation_not_found, type_not_found

# A compiled rewrite rule: ("this",) | ("computed", rel) | ("ttu", tupleset, computed)
# | ("union", (children...)) | ("intersection", (children...)) | ("difference", base, subtract)
Rewrite = tuple[Any, ...]


@dataclass(frozen=True)
class TypeRestriction:
    """One entry of a relation's directly related user types: `user`, `user:*`, `group#member`."""

    type: str
    relation: str = ""
    wildcard: bool = False
    condition: str = ""


@dataclass
class Relation:
    """A relation of a type: its rewrite rule and its direct type restrictions."""

    name: str
    rewrite: Rewrite
    restrictions: tuple[TypeRestriction, ...] = ()
    has_type_info: bool = False


@dataclass
class Condition:
    """A named CEL condition with its typed parameters (type names as in OpenFGA's JSON)."""

    name: str
    expression: str
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


def _compile_rewrite(node: dict[str, Any]) -> Rewrite:
    if not isinstance(node, dict) or not node:
        raise FGAError(ErrorCode.invalid_authorization_model, "empty relation definition")
    if "this" in node:
        return ("this",)
    cu = node.get("computedUserset") or node.get("computed_userset")
    if cu is not None:
        return ("computed", cu["relation"])
    ttu = node.get("tupleToUserset") or node.get("tuple_to_userset")
    if ttu is not None:
        cu2 = ttu.get("computedUserset") or ttu.get("computed_userset")
        return ("ttu", ttu["tupleset"]["relation"], cu2["relation"])
    if "union" in node:
        return ("union", tuple(_compile_rewrite(c) for c in node["union"].get("child", [])))
    if "intersection" in node:
        children = node["intersection"].get("child", [])
        return ("intersection", tuple(_compile_rewrite(c) for c in children))
    if "difference" in node:
        diff = node["difference"]
        return ("difference", _compile_rewrite(diff["base"]), _compile_rewrite(diff["subtract"]))
    raise FGAError(ErrorCode.invalid_authorization_model, f"unknown rewrite rule {sorted(node)}")


def _walk(rewrite: Rewrite):
    yield rewrite
    kind = rewrite[0]
    if kind in ("union", "intersection"):
        for child in rewrite[1]:
            yield from _walk(child)
    elif kind == "difference":
        yield from _walk(rewrite[1])
        yield from _walk(rewrite[2])


class TypeSystem:
    """A model version: types, relations, conditions, and precomputed facts about its graph.

    `memo_safe` says whether check results may be shared between branches of one request:
    true when the relation graph has no cycle, or when it uses no intersection or exclusion
    (then a cut cycle can never turn a reachable "allowed" into "not allowed").
    """

    def __init__(self, model: dict[str, Any], model_id: str = "") -> None:
        self.model = model
        self.id = model_id or str(model.get("id", ""))
        self.schema_version = str(model.get("schema_version", "1.1"))
        self.types: dict[str, dict[str, Relation]] = {}
        for td in model.get("type_definitions", []) or []:
            type_name = td["type"]
            meta = ((td.get("metadata") or {}).get("relations")) or {}
            relations: dict[str, Relation] = {}
            for rel_name, rw in (td.get("relations") or {}).items():
                info = meta.get(rel_name)
                restrictions = tuple(
                    TypeRestriction(
                        type=r["type"],
                        relation=r.get("relation", "") or "",
                        wildcard="wildcard" in r and r.get("wildcard") is not None,
                        condition=r.get("condition", "") or "",
                    )
                    for r in ((info or {}).get("directly_related_user_types") or [])
                )
                # schema 1.1: every relation has type information, possibly empty (then no
                # tuple may be written to it directly)
                relations[rel_name] = Relation(rel_name, _compile_rewrite(rw), restrictions, True)
            self.types[type_name] = relations
        self.conditions: dict[str, Condition] = {
            name: Condition(name, c.get("expression", ""), dict(c.get("parameters") or {}))
            for name, c in (model.get("conditions") or {}).items()
        }
        self._tuplesets: set[tuple[str, str]] = set()
        has_set_ops = False
        for type_name, relations in self.types.items():
            for rel in relations.values():
                for node in _walk(rel.rewrite):
                    if node[0] == "ttu":
                        self._tuplesets.add((type_name, node[1]))
                    elif node[0] in ("intersection", "difference"):
                        has_set_ops = True
        self.memo_safe = not has_set_ops or not self._has_cycle()
        self.has_weighted_graph = not self._unweighable_exclusion()
        self._reach: dict[str, set[tuple[str, str]]] = {}
        self._weights: Weights | None = None

    def _unweighable_exclusion(self) -> bool:
        """Whether OpenFGA fails to build this model's weighted graph, so that its check never
        uses the recursive strategies (every cycle is then flagged).

        OpenFGA's graph builder de-duplicates tuple-to-userset edges leaving an operator node:
        `x from parent but not x from parent`, with a single type on `parent`, leaves the
        exclusion node with one edge, and assigning weights fails for the whole model.
        """
        for relations in self.types.values():
            for rel in relations.values():
                for node in _walk(rel.rewrite):
                    if node[0] != "difference":
                        continue
                    base, subtract = node[1], node[2]
                    if base[0] == "ttu" and base == subtract:
                        tupleset = relations.get(base[1])
                        if tupleset is not None and len(tupleset.restrictions) == 1:
                            return True
        return False

    def reaches(self, type_name: str, relation: str, target: str) -> bool:
        """Whether some tuples could make `type_name#relation` hold for a user of kind `target`:
        a type (`user`), a typed wildcard (`user:*`) or a userset (`group#member`).

        OpenFGA's weighted graph prunes every edge that cannot lead to the user's kind before
        it reads a tuple or evaluates a condition on that edge, so a condition on such an edge
        is never an error. Union needs one operand, intersection all, exclusion its base.
        """
        reach = self._reach.get(target)
        if reach is None:
            reach = self._reach[target] = self._reachable(target)
        return (type_name, relation) in reach

    def _reachable(self, target: str) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()

        def restriction(r: TypeRestriction) -> bool:
            if r.relation:
                return f"{r.type}#{r.relation}" == target or (r.type, r.relation) in found
            if r.wildcard:  # `user:*` grants every user, and the wildcard itself
                return target in (r.type, f"{r.type}:*")
            return r.type == target

        def holds(type_name: str, rel: Relation, rw: Rewrite) -> bool:
            kind = rw[0]
            if kind == "this":
                return any(restriction(r) for r in rel.restrictions)
            if kind == "computed":
                return (type_name, rw[1]) in found
            if kind == "ttu":
                tupleset = self.relation_or_none(type_name, rw[1])
                return any(
                    (r.type, rw[2]) in found
                    for r in (tupleset.restrictions if tupleset else ())
                    if not r.relation and not r.wildcard
                )
            if kind == "union":
                return any(holds(type_name, rel, c) for c in rw[1])
            if kind == "intersection":
                return all(holds(type_name, rel, c) for c in rw[1])
            return holds(type_name, rel, rw[1])  # exclusion: the base decides

        changed = True
        while changed:  # least fixpoint: cycles add nothing by themselves
            changed = False
            for type_name, relations in self.types.items():
                for rel in relations.values():
                    key = (type_name, rel.name)
                    if key in found:
                        continue
                    # `Check(folder:x#editor, editor, folder:x)` holds with no tuple at all
                    if f"{type_name}#{rel.name}" == target or holds(type_name, rel, rel.rewrite):
                        found.add(key)
                        changed = True
        return found

    @property
    def weights(self) -> Weights:
        """The model's weighted graph (built on first use)."""
        if self._weights is None:
            self._weights = Weights(self)
        return self._weights

    # lookups -------------------------------------------------------------------------------

    def has_type(self, type_name: str) -> bool:
        return type_name in self.types

    def get_relation(self, type_name: str, relation: str) -> Relation:
        """The relation, or 2021/2022 if the type or relation is not defined."""
        relations = self.types.get(type_name)
        if relations is None:
            raise type_not_found(type_name)
        rel = relations.get(relation)
        if rel is None:
            raise relation_not_found(relation, type_name)
        return rel

    def relation_or_none(self, type_name: str, relation: str) -> Relation | None:
        relations = self.types.get(type_name)
        return None if relations is None else relations.get(relation)

    def is_tupleset_relation(self, type_name: str, relation: str) -> bool:
        return (type_name, relation) in self._tuplesets

    def directly_related_usersets(self, type_name: str, relation: str) -> list[TypeRestriction]:
        """Restrictions that are usersets (`group#member`) or typed wildcards (`user:*`)."""
        rel = self.relation_or_none(type_name, relation)
        if rel is None:
            return []
        return [r for r in rel.restrictions if r.relation or r.wildcard]

    def is_directly_related(
        self, type_name: str, relation: str, src_type: str, src_rel: str
    ) -> bool:
        """Whether `src_type[#src_rel]` (not a wildcard) is a direct type restriction."""
        rel = self.relation_or_none(type_name, relation)
        if rel is None:
            return False
        for r in rel.restrictions:
            if r.type != src_type or r.wildcard:
                continue
            if r.relation == src_rel:
                return True
        return False

    # graph facts ---------------------------------------------------------------------------

    def _edges(self) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """type#relation -> the type#relations its evaluation may visit."""
        edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for type_name, relations in self.types.items():
            for rel in relations.values():
                out: set[tuple[str, str]] = set()
                for node in _walk(rel.rewrite):
                    if node[0] == "this":
                        for r in rel.restrictions:
                            if r.relation:
                                out.add((r.type, r.relation))
                    elif node[0] == "computed":
                        out.add((type_name, node[1]))
                    elif node[0] == "ttu":
                        tupleset = relations.get(node[1])
                        for r in tupleset.restrictions if tupleset else ():
                            out.add((r.type, node[2]))
                edges[(type_name, rel.name)] = out
        return edges

    def _has_cycle(self) -> bool:
        edges = self._edges()
        state: dict[tuple[str, str], int] = {}

        def visit(node: tuple[str, str]) -> bool:
            state[node] = 1
            for nxt in edges.get(node, ()):
                s = state.get(nxt, 0)
                if s == 1 or (s == 0 and visit(nxt)):
                    return True
            state[node] = 2
            return False

        return any(state.get(n, 0) == 0 and visit(n) for n in list(edges))


INFINITE = 10**9


class Weights:
    """OpenFGA's weighted graph, reduced to what check needs: how many tuple hops a relation
    needs to reach a user type (1 = directly assignable, INFINITE = recursive), and whether a
    relation is resolved by OpenFGA's recursive strategy (plain reachability, no cycle flag)."""

    def __init__(self, ts: TypeSystem) -> None:
        self.ts = ts
        self._weights: dict[tuple[str, str, str], int | None] = {}
        self._recursive: dict[tuple[str, str, str], bool] = {}
        self._edges = ts._edges()
        self._multi_cycle: dict[tuple[str, str], bool] = {}

    def weight(self, type_name: str, relation: str, user_type: str) -> int | None:
        """Hops from `user_type` to `type#relation`; None if it cannot reach it at all."""
        key = (type_name, relation, user_type)
        if key in self._weights:
            value = self._weights[key]
            return INFINITE if value == -1 else value
        self._weights[key] = -1  # in progress: a cycle back here means recursion
        rel = self.ts.relation_or_none(type_name, relation)
        value = (
            None if rel is None else self._rewrite_weight(type_name, rel, rel.rewrite, user_type)
        )
        self._weights[key] = value
        return value

    def _rewrite_weight(
        self, type_name: str, rel: Relation, rw: Rewrite, user_type: str
    ) -> int | None:
        kind = rw[0]
        weights: list[int] = []
        if kind == "this":
            for r in rel.restrictions:
                w = self._restriction_weight(r, user_type)
                if w is not None:
                    weights.append(w)
        elif kind == "computed":
            w = self.weight(type_name, rw[1], user_type)
            if w is not None:
                weights.append(w)
        elif kind == "ttu":
            w = self._ttu_weight(type_name, rw[1], rw[2], user_type)
            if w is not None:
                weights.append(w)
        elif kind in ("union", "intersection"):
            for child in rw[1]:
                w = self._rewrite_weight(type_name, rel, child, user_type)
                if w is not None:
                    weights.append(w)
        elif kind == "difference":
            for child in (rw[1], rw[2]):
                w = self._rewrite_weight(type_name, rel, child, user_type)
                if w is not None:
                    weights.append(w)
        return max(weights) if weights else None

    def _restriction_weight(self, r: TypeRestriction, user_type: str) -> int | None:
        if not r.relation:
            return 1 if r.type == user_type else None
        w = self.weight(r.type, r.relation, user_type)
        return None if w is None else min(INFINITE, w + 1)

    def _ttu_weight(
        self, type_name: str, tupleset: str, computed: str, user_type: str
    ) -> int | None:
        ts_rel = self.ts.relation_or_none(type_name, tupleset)
        weights = []
        for r in ts_rel.restrictions if ts_rel else ():
            if r.relation or self.ts.relation_or_none(r.type, computed) is None:
                continue
            w = self.weight(r.type, computed, user_type)
            if w is not None:
                weights.append(min(INFINITE, w + 1))
        return max(weights) if weights else None

    def _on_longer_cycle(self, node: tuple[str, str]) -> bool:
        """Whether `node` is on a cycle through another relation (OpenFGA's tuple cycle)."""
        cached = self._multi_cycle.get(node)
        if cached is not None:
            return cached
        stack = [n for n in self._edges.get(node, ()) if n != node]
        seen: set[tuple[str, str]] = set()
        found = False
        while stack:
            current = stack.pop()
            if current == node:
                found = True
                break
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self._edges.get(current, ()))
        self._multi_cycle[node] = found
        return found

    def recursive(self, type_name: str, relation: str, user_type: str) -> bool:
        """OpenFGA's UsersetUseRecursiveResolver / TTUUseRecursiveResolver, approximately: the
        relation reaches the user type only through one edge to itself, every other way in is
        direct (weight 1), and it is not part of a longer cycle."""
        key = (type_name, relation, user_type)
        cached = self._recursive.get(key)
        if cached is not None:
            return cached
        result = False
        rel = self.ts.relation_or_none(type_name, relation)
        if (
            self.ts.has_weighted_graph
            and rel is not None
            and self.weight(type_name, relation, user_type) == INFINITE
            and not self._on_longer_cycle((type_name, relation))
        ):
            counter = {"userset": 0, "ttu": 0}
            ok = self._only_direct_besides_self(type_name, rel, rel.rewrite, user_type, counter)
            selfs = counter["userset"] + counter["ttu"]
            if ok and selfs == 1:
                result = counter["userset"] == 1 or rel.rewrite[0] == "union"
        self._recursive[key] = result
        return result

    def _only_direct_besides_self(
        self, type_name: str, rel: Relation, rw: Rewrite, user_type: str, counter: dict[str, int]
    ) -> bool:
        kind = rw[0]
        if kind == "this":
            selfs = 0  # `[group#member, group#member with cond]` is one edge in OpenFGA's graph
            for r in rel.restrictions:
                if r.relation == rel.name and r.type == type_name:
                    selfs = 1
                    continue
                w = self._restriction_weight(r, user_type)
                if w is not None and w > 1:
                    return False
            counter["userset"] += selfs
            return True
        if kind == "ttu":
            ts_rel = self.ts.relation_or_none(type_name, rw[1])
            selfs = 0  # `parent: [folder, folder with cond]` is one edge too
            for r in ts_rel.restrictions if ts_rel else ():
                if r.relation or self.ts.relation_or_none(r.type, rw[2]) is None:
                    continue
                if r.type == type_name and rw[2] == rel.name:
                    selfs = 1
                    continue
                w = self.weight(r.type, rw[2], user_type)
                if w is not None:
                    return False  # another parent type: at least weight 2
            counter["ttu"] += selfs
            return True
        if kind in ("union", "intersection", "difference"):
            children = rw[1] if kind != "difference" else (rw[1], rw[2])
            return all(
                self._only_direct_besides_self(type_name, rel, c, user_type, counter)
                for c in children
            )
        w = self._rewrite_weight(type_name, rel, rw, user_type)
        return w is None or w <= 1
