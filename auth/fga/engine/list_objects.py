"""ListObjects: every object of a type on which the user has the relation.

Candidates come from a reverse expansion from the user (`reverse.py`, a superset of the answer),
and each candidate is confirmed by the check resolver, so that list_objects and check always
agree (OpenFGA's harness requires that). The resolver is shared across candidates: reads and, where
the model allows it, sub-results are computed once per request.
"""

from __future__ import annotations

from auth.fga.engine.check import CheckResolver
from auth.fga.engine.reverse import candidate_objects
from auth.fga.errors import ErrorCode, FGAError


def list_objects(
    resolver: CheckResolver, user: str, relation: str, object_type: str, limit: int = 0
) -> list[str]:
    """Objects of `object_type` where `user` has `relation`, deduplicated, in discovery order.

    A condition error on a tuple the reverse expansion walks fails the request, as in OpenFGA;
    a candidate is confirmed by an ordinary check (OpenFGA's), where a union granted by one
    operand absorbs an error under another. A depth error on a candidate fails the request.
    When the resolver's deadline passes, the objects confirmed so far are the answer (OpenFGA's
    list_objects answers with what it has at its deadline).
    """
    results: list[str] = []
    try:
        candidates = candidate_objects(
            resolver.ts,
            resolver.reader,
            user,
            relation,
            object_type,
            resolver.condition_met,
            resolver.check_deadline,
        )
    except FGAError as e:
        if e.code == ErrorCode.deadline_exceeded:
            return results
        raise
    for obj in candidates:
        try:
            allowed = resolver.check(obj, relation, user)
        except FGAError as e:
            if e.code == ErrorCode.deadline_exceeded:
                break
            raise
        if allowed:
            results.append(obj)
            if limit and len(results) >= limit:
                break
    return results
