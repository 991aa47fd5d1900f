"""The embedded OpenFGA-compatible engine (schema 1.1): check, batch check, list objects/users.

Every query takes a compiled model (`TypeSystem`), a tuple source (the store, see
`auth.fga.store.Store.source`), and optional contextual tuples and request context. Queries
validate their input as OpenFGA does and raise `auth.fga.errors.FGAError` with OpenFGA's codes:

- check: malformed or unknown user/object/relation -> 2000; invalid contextual tuple -> 2027;
- list_objects: unknown type 2021, unknown relation 2022, bad user 2000, contextual 2027;
- list_users: unknown object type or filter type 2021, unknown relation 2022, contextual 2027;
- all: resolution deeper than 25 -> 2002; a condition missing a parameter -> 2000;
  more than 100 contextual tuples -> 2000.

Usage::

    ts = TypeSystem(model_json, model_id)
    allowed = check(ts, store.source(store_id), "user:anne", "viewer", "document:1")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auth.fga.client import CheckRequest, CheckResult, TupleKey
from auth.fga.engine.check import DEFAULT_MAX_DEPTH, CheckResolver
from auth.fga.engine.list_objects import list_objects as _list_objects
from auth.fga.engine.list_users import ListUsersResolver, UserFilter
from auth.fga.engine.reader import EmptySource, RequestReader, TupleSource
from auth.fga.engine.typesystem import TypeSystem
from auth.fga.engine.validation import (
    check_context_is_object,
    validate_tuple,
    validate_user,
    validate_user_object_relation,
)
from auth.fga.errors import ErrorCode, FGAError, relation_not_found, type_not_found

__all__ = [
    "CHECK_DEADLINE_SECONDS",
    "DEFAULT_MAX_DEPTH",
    "LIST_DEADLINE_SECONDS",
    "LIST_MAX_RESULTS",
    "MAX_CONTEXTUAL_TUPLES",
    "EmptySource",
    "TupleSource",
    "TypeSystem",
    "batch_check",
    "check",
    "list_objects",
    "list_users",
]


MAX_CONTEXTUAL_TUPLES = 100  # OpenFGA's limit per request
# OpenFGA's server defaults: list_objects / list_users stop at 1,000 results or after 3 s
# (then answering with what they have); a check stops after 3 s with 4004
LIST_MAX_RESULTS = 1000
LIST_DEADLINE_SECONDS = 3.0
CHECK_DEADLINE_SECONDS = 3.0


def _contextual(ts: TypeSystem, tuples: Sequence[TupleKey]) -> list[TupleKey]:
    if len(tuples) > MAX_CONTEXTUAL_TUPLES:
        raise FGAError(
            ErrorCode.validation_error,
            f"at most {MAX_CONTEXTUAL_TUPLES} contextual tuples per request ({len(tuples)} given)",
        )
    for tk in tuples:
        validate_tuple(ts, tk)
    return list(tuples)


def check(
    ts: TypeSystem,
    source: TupleSource,
    user: str,
    relation: str,
    object: str,
    *,
    contextual_tuples: Sequence[TupleKey] = (),
    context: dict[str, Any] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    deadline: float | None = None,
) -> bool:
    """May `user` have `relation` on `object`? `deadline` (seconds) stops it with 4004."""
    validate_user_object_relation(ts, user, relation, object)
    ctx_tuples = _contextual(ts, contextual_tuples)
    ctx = check_context_is_object(context)
    reader = RequestReader(ts, source, ctx_tuples)
    resolver = CheckResolver(ts, reader, ctx, max_depth, deadline=deadline)
    return resolver.check(object, relation, user)


def batch_check(
    ts: TypeSystem, source: TupleSource, checks: Sequence[CheckRequest]
) -> list[CheckResult]:
    """Each question answered independently; an error answers that one question only.

    Questions without contextual tuples or context share one reader and resolver, so their
    common reads (a folder's parents, a group's members) are done once for the whole batch.
    """
    results: list[CheckResult] = []
    shared: CheckResolver | None = None
    for req in checks:
        try:
            if not req.contextual_tuples and not req.context:
                validate_user_object_relation(ts, req.user, req.relation, req.object)
                if shared is None:
                    shared = CheckResolver(ts, RequestReader(ts, source))
                allowed = shared.check(req.object, req.relation, req.user)
                results.append(CheckResult(allowed=allowed))
                continue
            allowed = check(
                ts,
                source,
                req.user,
                req.relation,
                req.object,
                contextual_tuples=req.contextual_tuples,
                context=req.context,
            )
            results.append(CheckResult(allowed=allowed))
        except FGAError as e:
            results.append(CheckResult(allowed=False, error=str(e)))
    return results


def list_objects(
    ts: TypeSystem,
    source: TupleSource,
    user: str,
    relation: str,
    object_type: str,
    *,
    contextual_tuples: Sequence[TupleKey] = (),
    context: dict[str, Any] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    limit: int = LIST_MAX_RESULTS,
    deadline: float | None = LIST_DEADLINE_SECONDS,
) -> list[str]:
    """Objects of `object_type` on which `user` has `relation` (no duplicates): at most
    `limit` of them (0: no cap), and those found within `deadline` seconds (None: no limit)."""
    ts.get_relation(object_type, relation)  # 2021 / 2022
    validate_user(ts, user)  # 2000
    ctx_tuples = _contextual(ts, contextual_tuples)
    ctx = check_context_is_object(context)
    reader = RequestReader(ts, source, ctx_tuples)
    resolver = CheckResolver(ts, reader, ctx, max_depth, deadline=deadline)
    return _list_objects(resolver, user, relation, object_type, limit)


def list_users(
    ts: TypeSystem,
    source: TupleSource,
    object: str,
    relation: str,
    user_filters: Sequence[str],
    *,
    contextual_tuples: Sequence[TupleKey] = (),
    context: dict[str, Any] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    limit: int = LIST_MAX_RESULTS,
    deadline: float | None = LIST_DEADLINE_SECONDS,
) -> list[str]:
    """Users (`user:x`, `user:*`, or usersets `group:x#member`) with `relation` on `object`:
    at most `limit` (0: no cap); past `deadline` seconds the request fails with 4004 (the
    expansion decides exclusions only at its end, so it has no partial answer to give)."""
    object_type, _, object_id = object.partition(":")
    if not object_id:
        raise FGAError(ErrorCode.validation_error, f"invalid object '{object}'")
    ts.get_relation(object_type, relation)  # 2021 / 2022
    if len(user_filters) != 1:
        raise FGAError(ErrorCode.validation_error, "exactly one user filter is required")
    user_filter = UserFilter.parse(user_filters[0])
    if not ts.has_type(user_filter.type):
        raise type_not_found(user_filter.type)
    if user_filter.relation and ts.relation_or_none(user_filter.type, user_filter.relation) is None:
        raise relation_not_found(user_filter.relation, user_filter.type)
    ctx_tuples = _contextual(ts, contextual_tuples)
    ctx = check_context_is_object(context)
    reader = RequestReader(ts, source, ctx_tuples)
    resolver = ListUsersResolver(ts, reader, user_filter, ctx, max_depth, deadline=deadline)
    users = resolver.list_users(object, relation)
    return users[:limit] if limit else users
