"""Candidate objects for ListObjects by reverse expansion: from the user up to the target type.

Starting from the user (and `type:*` for a user object), it follows tuples backwards through
the model's edges (direct tuples, usersets `group#member`, computed relations, tuple to userset)
and collects every `object#relation` the user might have. Conditions, intersections and
exclusions are not decided here: the result is a superset, and every candidate of the target
type is then confirmed by check. Reads are batched per edge and layer (no query per object).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from auth.fga.engine.reader import Edge, RequestReader
from auth.fga.engine.typesystem import Rewrite, TypeSystem
from auth.fga.engine.validation import split_object_relation

# (type, relation) -> what (target type, target relation) it feeds, and how:
#   ("userset", T, R): tuples T:o#R@X:y#S;  ("computed", T, R): same object;
#   ("ttu", T, R, tupleset): tuples T:o#tupleset@X:y
Dependents = dict[tuple[str, str], list[tuple[str, ...]]]


def _positive_leaves(rw: Rewrite) -> Iterable[Rewrite]:
    """The leaves the expansion walks, as OpenFGA's pruned relationship edges: every operand
    of a union, the first of an intersection and the base of an exclusion (an object must
    be in those; check confirms the rest, so paths under the others are never read)."""
    kind = rw[0]
    if kind == "union":
        for child in rw[1]:
            yield from _positive_leaves(child)
    elif kind == "intersection":
        if rw[1]:
            yield from _positive_leaves(rw[1][0])
    elif kind == "difference":
        yield from _positive_leaves(rw[1])
    else:
        yield rw


def _graph(ts: TypeSystem) -> tuple[Dependents, dict[tuple[str, str], list[tuple[str, bool]]]]:
    """Dependents per (type, relation), and per (T, R) its direct user types (type, wildcard)."""
    cached = getattr(ts, "_reverse_graph", None)
    if cached is not None:
        return cached
    dependents: Dependents = defaultdict(list)
    direct: dict[tuple[str, str], list[tuple[str, bool]]] = defaultdict(list)
    for type_name, relations in ts.types.items():
        for rel in relations.values():
            for leaf in _positive_leaves(rel.rewrite):
                if leaf[0] == "this":
                    for r in rel.restrictions:
                        if r.relation:
                            dependents[(r.type, r.relation)].append(
                                ("userset", type_name, rel.name)
                            )
                        else:
                            direct[(type_name, rel.name)].append((r.type, r.wildcard))
                elif leaf[0] == "computed":
                    dependents[(type_name, leaf[1])].append(("computed", type_name, rel.name))
                elif leaf[0] == "ttu":
                    tupleset = relations.get(leaf[1])
                    for r in tupleset.restrictions if tupleset else ():
                        if (
                            not r.relation
                            and not r.wildcard
                            and ts.relation_or_none(r.type, leaf[2])
                        ):
                            dependents[(r.type, leaf[2])].append(
                                ("ttu", type_name, rel.name, leaf[1])
                            )
    result = (dict(dependents), dict(direct))
    ts._reverse_graph = result  # type: ignore[attr-defined]
    return result


def _leading_to(
    ts: TypeSystem, dependents: Dependents, target: tuple[str, str]
) -> set[tuple[str, str]]:
    """Every (type, relation) from which the expansion can get to `target`."""
    cache: dict[tuple[str, str], set[tuple[str, str]]] = ts.__dict__.setdefault(
        "_reverse_leading", {}
    )
    found = cache.get(target)
    if found is not None:
        return found
    feeds: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for src, deps in dependents.items():
        for dep in deps:
            feeds[(dep[1], dep[2])].append(src)
    found = {target}
    stack = [target]
    while stack:
        for src in feeds.get(stack.pop(), ()):
            if src not in found:
                found.add(src)
                stack.append(src)
    cache[target] = found
    return found


def candidate_objects(
    ts: TypeSystem,
    reader: RequestReader,
    user: str,
    relation: str,
    object_type: str,
    condition_met: Callable[[Edge], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> list[str]:
    """Objects of `object_type` on which `user` may have `relation` (a superset).

    With `condition_met`, every tuple the expansion walks through has its condition evaluated,
    as OpenFGA's reverse expansion does: an unmet condition ends that path, and an error (a
    missing parameter) propagates, failing the request even if another path reaches the object.
    """
    dependents, direct = _graph(ts)
    relevant = _leading_to(ts, dependents, (object_type, relation))

    def objects_of(edges: list[Edge]) -> Iterable[str]:
        for e in edges:
            if condition_met is None or not e.key.condition_name or condition_met(e):
                yield e.key.object

    reached: dict[tuple[str, str], set[str]] = defaultdict(set)  # (type, relation) -> objects
    frontier: dict[tuple[str, str], set[str]] = defaultdict(set)

    def reach(type_name: str, rel: str, objects: Iterable[str]) -> None:
        if (type_name, rel) not in relevant:
            return  # a path that cannot lead to the target: OpenFGA never walks it
        seen = reached[(type_name, rel)]
        for obj in objects:
            if obj not in seen:
                seen.add(obj)
                frontier[(type_name, rel)].add(obj)

    user_object, user_relation = split_object_relation(user)
    user_type = user_object.split(":", 1)[0]
    if user_relation:
        reach(user_type, user_relation, [user_object])
    else:
        # direct tuples naming the user, or a wildcard of the user's type
        for (t, r), user_types in direct.items():
            subjects = []
            if any(ut == user_type and not wc for ut, wc in user_types):
                subjects.append(user)
            if any(ut == user_type and wc for ut, wc in user_types):
                subjects.append(f"{user_type}:*")
            if user == f"{user_type}:*" and subjects:
                subjects = [user]
            if subjects and (t, r) in relevant:
                reach(t, r, objects_of(reader.read_by_user(subjects, t, r)))
    while frontier:
        if tick is not None:
            tick()  # the request's deadline: raises once it has passed
        layer, frontier_items = dict(frontier), None
        frontier.clear()
        del frontier_items
        for (src_type, src_rel), objects in layer.items():
            for dep in dependents.get((src_type, src_rel), ()):
                kind, t, r = dep[0], dep[1], dep[2]
                if kind == "computed":
                    reach(t, r, objects)
                elif kind == "userset":
                    subjects = [f"{o}#{src_rel}" for o in objects]
                    reach(t, r, objects_of(reader.read_by_user(subjects, t, r)))
                else:  # ttu: T:o#tupleset@src_object
                    tupleset = dep[3]
                    reach(
                        t,
                        r,
                        objects_of(reader.read_by_user(list(objects), t, tupleset)),
                    )
    return sorted(reached.get((object_type, relation), ()))
