"""Check: may `user` have `relation` on `object`? One function per rewrite rule, as OpenFGA's
`internal/graph/check.go` resolves them (direct, computed userset, tuple to userset, union,
intersection, exclusion), evaluated depth-first in one thread.

Semantics kept from OpenFGA:
- every dispatch (following a userset tuple or a tuple-to-userset edge) costs one unit of a
  depth budget of 25; a request that runs out of it fails with 2002 (computed usersets are free);
- a path that comes back to a `object#relation@user` it is already resolving is a cycle: that
  branch is "not allowed" and is flagged, and intersection and exclusion treat a flagged operand
  as "not allowed" (as OpenFGA does). A cycle closed by a relation's edge to itself
  (`member: [user, group#member]`, `viewer: [user] or viewer from parent`) is not flagged when
  OpenFGA would resolve that relation with its recursive strategy (plain reachability: the
  self edge is the only indirect way in; see `TypeSystem.weights`);
- union: any allowed operand wins over errors; intersection: any "not allowed" operand wins over
  errors; exclusion: base not allowed, or subtract allowed, wins over errors;
- where OpenFGA's concurrent operands race between "not allowed" and "cycle", the engine takes
  the cycle (see `_cycle_in`): it may then deny where OpenFGA allowed, never the other way;
- results are shared within a request, as OpenFGA's check cache does, never a result a cycle
  cut short as a definite "not allowed": where cycles meet intersection or exclusion, such a
  result is reused only as CYCLE (the answer that grants least) and only while the key it cut
  at is still on the path, so a dense cycle costs its graph, not its paths (see `resolve`);
- tuples a model no longer allows are skipped; a condition that cannot be evaluated is an error,
  except on the userset and tuple-to-userset reads, which OpenFGA filters with its
  `ConditionsFilteredTupleKeyIterator`: there an unevaluable condition only skips its tuple
  once another tuple of the same read met its condition (the error surfaces when none did).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from auth.fga.engine import conditions
from auth.fga.engine.reader import Edge, RequestReader
from auth.fga.engine.typesystem import Rewrite, TypeSystem
from auth.fga.engine.validation import split_object_relation, tuple_to_string
from auth.fga.errors import FGAError, deadline_exceeded, resolution_too_complex

DEFAULT_MAX_DEPTH = 25
_NO_CUT = 1 << 30  # `CheckResolver._low` when no cycle was cut


@dataclass(frozen=True)
class Outcome:
    """A resolved sub-question: `cycle` is OpenFGA's cycle flag (it changes intersection and
    exclusion); `cut` says the path-dependent cycle rule decided part of it (not shareable)."""

    allowed: bool
    cycle: bool = False
    cut: bool = False


ALLOWED = Outcome(True)
DENIED = Outcome(False)
CYCLE = Outcome(False, True, True)
SELF_CUT = Outcome(False, False, True)  # a cycle through a relation's edge to itself
CUT = Outcome(False, False, True)


def _merge(cycle: bool, cut: bool) -> Outcome:
    if cycle:
        return CYCLE
    return CUT if cut else DENIED


class CheckResolver:
    """Resolves checks for one request (one model, one reader, one request context).

    Results are shared between branches of the request: with no cycle under a set operator
    (`TypeSystem.memo_safe`) every result no cycle cut short; otherwise every result no
    cycle touched, and cut results as CYCLE while their cut key is on the path. A memoized
    answer is reused only with at least the depth budget it was computed with, so the depth
    limit behaves as without sharing. Errors are never shared.
    """

    def __init__(
        self,
        ts: TypeSystem,
        reader: RequestReader,
        context: dict[str, Any] | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
        deadline: float | None = None,
    ) -> None:
        self.ts = ts
        # seconds this request may run; every dispatch checks it, so a timed-out request stops
        # using the CPU at once instead of running on in a worker thread nobody waits for
        self.deadline = deadline
        self._stop_at = None if deadline is None else time.monotonic() + deadline
        self.reader = reader
        self.context = context or {}
        self.max_depth = max_depth
        # the keys on the current path, each with its position on it
        self._visited: dict[tuple[str, str, str], int] = {}
        # the shallowest path position a cycle cut under the current frame went back to
        self._low = _NO_CUT
        # results cut short by a cycle, kept as CYCLE while the path position they went back
        # to stays on the path (see `resolve`); only where the model has cycles and set
        # operators (elsewhere `_memo` shares everything that is shareable)
        self._provisional: dict[tuple[str, str, str], int] | None = None if ts.memo_safe else {}
        self._provisional_at: dict[int, list[tuple[str, str, str]]] = {}
        self._targets: dict[str, str] = {}
        # the object#relation whose edges to itself are collected, not followed (see `recursive`)
        self._skip: tuple[str, str] | None = None
        self._collected: list[str] = []
        # None: nothing shared (each sub-question walked afresh, the reference answer in tests)
        self._memo: dict[tuple[str, str, str], tuple[Outcome, int]] | None = {}
        self.dispatch_count = 0

    # entry points ----------------------------------------------------------------------------

    def check(self, object: str, relation: str, user: str) -> bool:
        """The answer to a validated question; FGAError on 2002 or a condition error."""
        return self.resolve(object, relation, user, self.max_depth).allowed

    def resolve(
        self, object: str, relation: str, user: str, depth: int, self_edge: bool = False
    ) -> Outcome:
        """OpenFGA's ResolveCheck: depth limit, cycle detection, then the relation's rewrite.

        `self_edge` says this sub-check follows a relation's edge to itself (see the module doc).
        """
        if depth <= 0:
            raise resolution_too_complex()
        key = (object, relation, user)
        position = self._visited.get(key)
        if position is not None:
            self._low = min(self._low, position)
            if self_edge and self._recursive(object, relation, user):
                return SELF_CUT
            return CYCLE
        memo = self._memo
        hit = None if memo is None else memo.get(key)
        if hit is not None and depth >= hit[1]:
            return hit[0]
        if self._provisional is not None and memo is not None:
            cut_at = self._provisional.get(key)
            if cut_at is not None:
                self._low = min(self._low, cut_at)
                return CYCLE
        user_object, user_relation = split_object_relation(user)
        # Check(document:1#viewer@document:1#viewer) is always allowed
        if user_relation == relation and user_object == object:
            return ALLOWED
        object_type = object.split(":", 1)[0]
        rel = self.ts.relation_or_none(object_type, relation)
        if rel is None:
            raise FGAError(2000, f"relation '{relation}' undefined for object '{object}'")
        if not self.ts.reaches(object_type, relation, self.target(user)):
            return DENIED  # no tuple could grant it: nothing is read or evaluated
        position = len(self._visited)
        outer_low, self._low = self._low, _NO_CUT
        try:
            if self.ts.has_weighted_graph and self._recursive(object, relation, user):
                outcome = self.recursive(object, relation, user, rel.rewrite, depth)
            else:
                self._enter(key)
                try:
                    outcome = self.rewrite(object, relation, user, rel.rewrite, depth)
                finally:
                    self._leave(key)
            low = self._low
        finally:
            self._low = min(outer_low, self._low)
        if memo is None:
            return outcome
        if self.ts.memo_safe:
            if not outcome.cut:
                memo[key] = (outcome, depth)
        elif low == _NO_CUT:
            memo[key] = (outcome, depth)  # nothing on the path decided it: the same anywhere
        elif low < position and not outcome.allowed and self._provisional is not None:
            # Cut short by a cycle through an outer key: on another path it might be allowed,
            # so it is never a definite false. Reused as CYCLE while that outer key is on
            # the path: CYCLE is the answer that grants least (intersection and exclusion
            # deny on it), so a reuse may deny where a fresh walk allows, never grant more.
            self._provisional[key] = low
            self._provisional_at.setdefault(low, []).append(key)
        return outcome

    def _enter(self, key: tuple[str, str, str]) -> None:
        self._visited[key] = len(self._visited)

    def _leave(self, key: tuple[str, str, str]) -> None:
        """Take `key` off the path, with the cut results that depended on its being there."""
        position = self._visited.pop(key)
        if self._provisional is not None:
            for dropped in self._provisional_at.pop(position, ()):
                self._provisional.pop(dropped, None)

    def target(self, user: str) -> str:
        """The kind of user a check looks for: `user`, `user:*` or `group#member`."""
        kind = self._targets.get(user)
        if kind is None:
            user_object, user_relation = split_object_relation(user)
            user_type = user_object.partition(":")[0]
            if user_relation:
                kind = f"{user_type}#{user_relation}"
            else:
                kind = user_type  # OpenFGA prunes by the user's type, wildcard or not
            self._targets[user] = kind
        return kind

    # one function per rewrite rule -------------------------------------------------------------

    def rewrite(self, object: str, relation: str, user: str, rw: Rewrite, depth: int) -> Outcome:
        kind = rw[0]
        if kind == "this":
            return self.direct(object, relation, user, depth)
        if kind == "computed":
            return self.computed_userset(object, rw[1], user, depth)
        if kind == "ttu":
            return self.tuple_to_userset(object, relation, rw[1], rw[2], user, depth)
        if kind == "union":
            return self.union(object, relation, user, rw[1], depth)
        if kind == "intersection":
            return self.intersection(object, relation, user, rw[1], depth)
        if kind == "difference":
            return self.exclusion(object, relation, user, rw[1], rw[2], depth)
        raise FGAError(2000, f"unexpected rewrite rule '{kind}'")

    def condition_met(self, edge: Edge) -> bool:
        name = edge.key.condition_name
        if not name:
            return True
        condition = self.ts.conditions.get(name)
        if condition is None:  # filtered by validation already; be safe: not met
            return False
        return conditions.evaluate(
            condition, edge.key.condition_context, self.context, tuple_to_string(edge.key)
        )

    def direct(self, object: str, relation: str, user: str, depth: int) -> Outcome:
        """`[user, user:*, group#member]`: a matching tuple, a wildcard, or a userset to follow."""
        object_type = object.split(":", 1)[0]
        user_object, user_relation = split_object_relation(user)
        user_type = user_object.split(":", 1)[0]
        error: FGAError | None = None
        cycle = cut = False
        if self.ts.is_directly_related(object_type, relation, user_type, user_relation):
            edge = self.reader.read_user_tuple(object, relation, user)
            if edge is not None:
                try:
                    if self.condition_met(edge):
                        return ALLOWED
                except FGAError as e:
                    error = e
        usersets = self.ts.directly_related_usersets(object_type, relation)
        if usersets:
            allowed_usersets = {(r.type, r.relation) for r in usersets if r.relation}
            allowed_wildcards = {r.type for r in usersets if r.wildcard}
            dispatches: list[Edge] = []
            target = self.target(user)
            condition_error: FGAError | None = None
            met_once = False
            for edge in self.reader.read(object, relation):
                if edge.wildcard:
                    if edge.user_type not in allowed_wildcards or edge.user_type != user_type:
                        continue
                elif not edge.user_relation or (
                    (edge.user_type, edge.user_relation) not in allowed_usersets
                ):
                    continue
                elif not self.ts.reaches(edge.user_type, edge.user_relation, target):
                    continue  # pruned before its condition is evaluated, as OpenFGA does
                try:
                    if not self.condition_met(edge):
                        continue
                except FGAError as e:
                    if edge.wildcard:
                        error = e  # the wildcard is read on its own: its error stands
                    else:
                        condition_error = e
                    continue
                if edge.wildcard:
                    return ALLOWED
                met_once = True
                dispatches.append(edge)
            if condition_error is not None and not met_once:
                error = condition_error  # see module doc
            collect = self._skip == (object, relation)
            for edge in dispatches:
                self_edge = edge.user_type == object_type and edge.user_relation == relation
                if self_edge and collect:
                    self._collected.append(edge.user_object)
                    continue
                try:
                    out = self.dispatch(
                        edge.user_object, edge.user_relation, user, depth, self_edge
                    )
                except FGAError as e:
                    error = e
                    continue
                if out.allowed:
                    return ALLOWED
                cycle, cut = cycle or out.cycle, cut or out.cut
        if error is not None:
            raise error
        return _merge(cycle, cut)

    def computed_userset(self, object: str, relation: str, user: str, depth: int) -> Outcome:
        """`define viewer: editor`: the same object, another relation, no extra depth."""
        return self.resolve(object, relation, user, depth)

    def tuple_to_userset(
        self, object: str, relation: str, tupleset: str, computed: str, user: str, depth: int
    ) -> Outcome:
        """`viewer from parent`: for each `object#parent@x`, does the user have `x#viewer`?"""
        error: FGAError | None = None
        cycle = cut = False
        object_type = object.split(":", 1)[0]
        target = self.target(user)
        condition_error: FGAError | None = None
        met_once = False
        for edge in self.reader.read(object, tupleset):
            if self.ts.relation_or_none(edge.user_type, computed) is None:
                continue  # the parent's type does not define the relation: nothing to follow
            if not self.ts.reaches(edge.user_type, computed, target):
                continue  # pruned before its condition is evaluated, as OpenFGA does
            try:
                if not self.condition_met(edge):
                    continue
            except FGAError as e:
                condition_error = e
                continue
            met_once = True
            self_edge = edge.user_type == object_type and computed == relation
            if self_edge and self._skip == (object, relation):
                self._collected.append(edge.user_object)
                continue
            try:
                out = self.dispatch(edge.user_object, computed, user, depth, self_edge)
            except FGAError as e:
                error = e
                continue
            if out.allowed:
                return ALLOWED
            cycle, cut = cycle or out.cycle, cut or out.cut
        if condition_error is not None and not met_once:
            error = error or condition_error  # see module doc
        if error is not None:
            raise error
        return _merge(cycle, cut)

    def union(self, object: str, relation: str, user: str, children: Any, depth: int) -> Outcome:
        """`a or b`: allowed if any operand is; an error only matters if none is."""
        error: FGAError | None = None
        cycle = cut = False
        for child in children:
            try:
                out = self.rewrite(object, relation, user, child, depth)
            except FGAError as e:
                error = e
                continue
            if out.allowed:
                return ALLOWED
            cycle, cut = cycle or out.cycle, cut or out.cut
        if error is not None:
            raise error
        return _merge(cycle, cut)

    def intersection(
        self, object: str, relation: str, user: str, children: Any, depth: int
    ) -> Outcome:
        """`a and b`: not allowed as soon as one operand is not (or hit a cycle)."""
        if not children:
            return DENIED
        error: FGAError | None = None
        for child in children:
            try:
                out = self.rewrite(object, relation, user, child, depth)
            except FGAError as e:
                error = e
                continue
            if out.cycle:
                return out
            if not out.allowed:
                return self._cycle_in(object, relation, user, children, child, depth) or out
        if error is not None:
            raise error
        return ALLOWED

    def _cycle_in(
        self, object: str, relation: str, user: str, operands: Any, skip: Any, depth: int
    ) -> Outcome | None:
        """CYCLE if another operand of a denying intersection or exclusion meets a cycle.

        OpenFGA resolves the operands concurrently and answers with the first deciding one:
        "not allowed" or "cycle". Which comes first is a race; a cycle flag can only make
        enclosing exclusions deny, so the engine takes the cycle whenever there is one: it
        may deny where OpenFGA's race went the other way, never grant where OpenFGA denies.
        """
        for operand in operands:
            if operand is skip:
                continue
            try:
                out = self.rewrite(object, relation, user, operand, depth)
            except FGAError:
                continue  # the answer is already "not allowed"; an error changes nothing
            if out.cycle:
                return CYCLE
        return None

    def exclusion(
        self, object: str, relation: str, user: str, base: Rewrite, subtract: Rewrite, depth: int
    ) -> Outcome:
        """`a but not b`: allowed if the base is and the subtracted set is not."""
        base_error: FGAError | None = None
        try:
            base_out = self.rewrite(object, relation, user, base, depth)
            if base_out.cycle:
                return CYCLE
            if not base_out.allowed:
                return self._cycle_in(object, relation, user, (subtract,), None, depth) or base_out
        except FGAError as e:
            base_error = e
        try:
            sub_out = self.rewrite(object, relation, user, subtract, depth)
            if sub_out.cycle:
                return CYCLE
            if sub_out.allowed:
                return DENIED
        except FGAError as e:
            raise base_error or e from None
        if base_error is not None:
            raise base_error
        return ALLOWED

    def recursive(self, object: str, relation: str, user: str, rw: Rewrite, depth: int) -> Outcome:
        """OpenFGA's recursive strategy for a relation whose only indirect way in is its edge to
        itself (`member: [user, group#member]`, `viewer: [user] or viewer from parent`):
        breadth first over that edge, each object visited once, so a dense cycle costs what
        the graph has, not its paths. No cycle is flagged. An object found 25 levels down is
        still found; a deeper one is a depth error, unless the user holds the relation
        directly nowhere (then no level could grant it: false, as OpenFGA answers).
        """
        seen = {object}
        frontier = [object]
        level = 0
        error: FGAError | None = None
        cycle = cut = False
        saved = self._skip, self._collected
        try:
            while frontier:
                following: list[str] = []
                for node in frontier:
                    self.check_deadline()
                    key = (node, relation, user)
                    position = self._visited.get(key)
                    if position is not None:
                        cut = True  # an outer path is resolving it: nothing new here
                        self._low = min(self._low, position)
                        continue
                    self._skip, self._collected = (node, relation), []
                    self._enter(key)
                    try:
                        out = self.rewrite(node, relation, user, rw, depth - level)
                    except FGAError as e:
                        out = None
                        if level == 0 or not self._user_side_empty(object, relation, user):
                            error = e
                    finally:
                        self._leave(key)
                    if out is not None:
                        if out.allowed:
                            return ALLOWED
                        cycle, cut = cycle or out.cycle, cut or out.cut
                    for nxt in self._collected:
                        if nxt not in seen:
                            seen.add(nxt)
                            following.append(nxt)
                level += 1
                if following and level > depth:
                    if not self._holds_directly_somewhere(object, relation, user):
                        break
                    raise resolution_too_complex()
                frontier = following
        finally:
            self._skip, self._collected = saved
        if error is not None:
            raise error
        return _merge(cycle, cut)

    def check_deadline(self) -> None:
        """Raise 4004 once the request's deadline has passed."""
        if self._stop_at is not None and time.monotonic() > self._stop_at:
            raise deadline_exceeded(self.deadline or 0)

    def _holds_directly_somewhere(self, object: str, relation: str, user: str) -> bool:
        """Whether some tuple of this type gives `user` the relation directly (or its type's
        wildcard does): the user side OpenFGA's recursive strategy starts from."""
        object_type = object.split(":", 1)[0]
        user_type = user.split(":", 1)[0]
        rel = self.ts.relation_or_none(object_type, relation)
        if rel is None or rel.rewrite[0] not in ("this", "union"):
            return True  # other ways in: stay on the safe side (the depth error)
        return bool(self.reader.read_by_user([user, f"{user_type}:*"], object_type, relation))

    def _user_side_empty(self, object: str, relation: str, user: str) -> bool:
        """Whether OpenFGA's recursive strategy finds no object the user reaches without the
        relation's edge to itself: it then answers false before walking past the first level,
        so an error further along (a parent tuple missing a condition parameter) is never met.
        True only when sure: every other operand is `[...]` on the relation or a computed
        relation that is itself only `[...]`, and the user holds none of those tuples."""
        object_type = object.split(":", 1)[0]
        user_type = user.split(":", 1)[0]
        rel = self.ts.relation_or_none(object_type, relation)
        if rel is None:
            return False
        operands = rel.rewrite[1] if rel.rewrite[0] == "union" else [rel.rewrite]
        relations = []
        for operand in operands:
            if operand[0] == "this":
                relations.append(relation)
            elif operand[0] == "computed":
                computed = self.ts.relation_or_none(object_type, operand[1])
                if computed is None or computed.rewrite[0] != "this":
                    return False
                relations.append(operand[1])
            elif operand[0] != "ttu" or operand[2] != relation:
                return False
        users = [user, f"{user_type}:*"]
        return not any(self.reader.read_by_user(users, object_type, r) for r in relations)

    def _recursive(self, object: str, relation: str, user: str) -> bool:
        """Whether OpenFGA resolves `relation` for this user type with its recursive strategy."""
        user_object, user_relation = split_object_relation(user)
        if user_relation:
            return False
        return self.ts.weights.recursive(
            object.split(":", 1)[0], relation, user_object.split(":", 1)[0]
        )

    def dispatch(
        self, object: str, relation: str, user: str, depth: int, self_edge: bool = False
    ) -> Outcome:
        """A sub-check one level deeper (a userset or tuple-to-userset edge)."""
        self.dispatch_count += 1
        self.check_deadline()
        return self.resolve(object, relation, user, depth - 1, self_edge)
