"""Tuple and request validation against a model, with OpenFGA's rules and error codes.

Three strengths, as in OpenFGA's `internal/validation`: `validate_user_object_relation` for
the key of a query (check, list), `validate_tuple` for anything written or sent as a
contextual tuple, and `is_valid_for_read` to skip stored tuples a newer model no longer allows.
"""

from __future__ import annotations

import re
from typing import Any

from auth.fga.client import TupleKey
from auth.fga.engine.conditions import cast_context
from auth.fga.engine.typesystem import TypeSystem
from auth.fga.errors import ErrorCode, FGAError

# control characters (C0, DEL, C1) are never part of an id, as OpenFGA refuses them
_C = r"\x00-\x1f\x7f-\x9f"
_USER_ID = re.compile(rf"^[^:#\s{_C}]+$")
_OBJECT = re.compile(rf"^[^:#\s{_C}]+:[^#:\s{_C}]+$")
_USERSET = re.compile(rf"^[^:#\s{_C}]+:[^#:*\s{_C}]+#[^:#*\s{_C}]+$")
_RELATION = re.compile(rf"^[^:#@\s{_C}]+$")

# OpenFGA's request validation (its protobuf rules) before any model lookup: 2000
MAX_USER_BYTES = 512
_OBJECT_FIELD = re.compile(r"[^\s]{2,256}")
_RELATION_FIELD = re.compile(r"[^:#@\s]{0,50}")  # empty: "malformed", later


def check_field_limits(user: str, relation: str, obj: str) -> None:
    """OpenFGA's limits on a tuple key: user at most 512 bytes, object 2 to 256 characters
    without spaces, relation 1 to 50 characters (2000, with OpenFGA's wording)."""
    if len(user.encode()) > MAX_USER_BYTES:
        raise FGAError(
            ErrorCode.validation_error,
            f"invalid TupleKey.User: value length must be at most {MAX_USER_BYTES} bytes",
        )
    if not _OBJECT_FIELD.fullmatch(obj):
        raise FGAError(
            ErrorCode.validation_error,
            'invalid TupleKey.Object: value does not match regex pattern "^[^\\s]{2,256}$"',
        )
    if not _RELATION_FIELD.fullmatch(relation):
        raise FGAError(
            ErrorCode.validation_error,
            'invalid TupleKey.Relation: value does not match regex pattern "^[^:#@\\s]{1,50}$"',
        )


def tuple_to_string(tk: TupleKey) -> str:
    """OpenFGA's `object#relation@user` rendering of a tuple."""
    return f"{tk.object}#{tk.relation}@{tk.user}"


def is_valid_object(s: str) -> bool:
    return bool(_OBJECT.match(s))


def is_valid_relation(s: str) -> bool:
    return bool(_RELATION.match(s))


def is_object_relation(s: str) -> bool:
    return s.count("#") == 1 and s.split("#", 1)[1] != ""


def is_typed_wildcard(s: str) -> bool:
    return is_valid_object(s) and s.split(":", 1)[1] == "*"


def is_valid_user(s: str) -> bool:
    if s.count(":") > 1 or s.count("#") > 1:
        return False
    return s == "*" or bool(_USER_ID.match(s) or _OBJECT.match(s) or _USERSET.match(s))


def split_object_relation(s: str) -> tuple[str, str]:
    """`group:1#member` -> (`group:1`, `member`); `user:1` -> (`user:1`, ``)."""
    obj, _, rel = s.partition("#")
    return obj, rel


def get_type(s: str) -> str:
    return s.split(":", 1)[0] if ":" in s else ""


class _Invalid(Exception):
    """A validation failure before it is given its code (as OpenFGA wraps its causes)."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.validation_error) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _validate_user(ts: TypeSystem, user: str) -> None:
    if not is_valid_user(user):
        raise _Invalid(f"the 'user' field is malformed: '{user}'")
    valid_object = is_valid_object(user)
    valid_userset = is_object_relation(user)
    if not valid_object and not valid_userset:
        raise _Invalid(
            f"the 'user' field '{user}' must be an object (e.g. document:1) or an "
            "'object#relation' or a typed wildcard (e.g. group:*)"
        )
    user_object, user_relation = split_object_relation(user)
    user_type = get_type(user_object)
    if not ts.has_type(user_type):
        raise _Invalid(f"type '{user_type}' not found", ErrorCode.type_not_found)
    if valid_userset and ts.relation_or_none(user_type, user_relation) is None:
        raise _Invalid(
            f"relation '{user_type}#{user_relation}' not found", ErrorCode.relation_not_found
        )


def _validate_object(ts: TypeSystem, obj: str) -> None:
    if not is_valid_object(obj):
        raise _Invalid(f"invalid 'object' field format: '{obj}'")
    object_type, object_id = obj.split(":", 1)
    if object_id == "*":
        raise _Invalid("the 'object' field cannot reference a typed wildcard")
    if not ts.has_type(object_type):
        raise _Invalid(f"type '{object_type}' not found", ErrorCode.type_not_found)


def _validate_relation(ts: TypeSystem, obj: str, relation: str) -> None:
    if not is_valid_relation(relation):
        raise _Invalid(f"the 'relation' field is malformed: '{relation}'")
    object_type = get_type(obj)
    if not ts.has_type(object_type):
        raise _Invalid(f"type '{object_type}' not found", ErrorCode.type_not_found)
    if ts.relation_or_none(object_type, relation) is None:
        raise _Invalid(
            f"relation '{object_type}#{relation}' not found", ErrorCode.relation_not_found
        )


def _check_user_object_relation(ts: TypeSystem, user: str, relation: str, obj: str) -> None:
    _validate_user(ts, user)
    _validate_object(ts, obj)
    _validate_relation(ts, obj, relation)


def validate_user(ts: TypeSystem, user: str) -> None:
    """A list_objects user: malformed or unknown type/relation is a validation error (2000)."""
    try:
        _validate_user(ts, user)
    except _Invalid as e:
        raise FGAError(ErrorCode.validation_error, e.message) from None


def validate_user_object_relation(ts: TypeSystem, user: str, relation: str, obj: str) -> None:
    """Loose validation of a check's key: any failure is a validation error (2000)."""
    check_field_limits(user, relation, obj)
    try:
        _check_user_object_relation(ts, user, relation, obj)
    except _Invalid as e:
        raise FGAError(ErrorCode.validation_error, e.message) from None


def _tupleset_problem(ts: TypeSystem, tk: TupleKey) -> str | None:
    object_type = get_type(tk.object)
    if not ts.is_tupleset_relation(object_type, tk.relation):
        return None
    rel = ts.relation_or_none(object_type, tk.relation)
    if rel is not None and rel.rewrite[0] != "this":
        return (
            f"unexpected rewrite encountered with tupleset relation '{object_type}#{tk.relation}'"
        )
    user = tk.user
    if is_valid_object(user) and not is_typed_wildcard(user):
        return None
    if user == "*" or is_typed_wildcard(user):
        return (
            f"unexpected wildcard relationship with tupleset relation '{object_type}#{tk.relation}'"
        )
    return f"unexpected user '{user}' with tupleset relation '{object_type}#{tk.relation}'"


def _type_restriction_problem(ts: TypeSystem, tk: TupleKey) -> str | None:
    object_type = get_type(tk.object)
    rel = ts.relation_or_none(object_type, tk.relation)
    restrictions = rel.restrictions if rel else ()
    user = tk.user
    user_object, user_rel = split_object_relation(user)
    user_type = get_type(user_object)
    target = f"'{object_type}#{tk.relation}'"
    if is_object_relation(user):
        if any(r.type == user_type and r.relation == user_rel for r in restrictions):
            return None
        return f"'{user_type}#{user_rel}' is not an allowed type restriction for {target}"
    if is_typed_wildcard(user):
        if any(r.type == user_type and r.wildcard for r in restrictions):
            return None
        return f"the typed wildcard '{user}' is not an allowed type restriction for {target}"
    if any(r.type == user_type and not r.wildcard and not r.relation for r in restrictions):
        return None
    return (
        f"type '{user_type}' is not an allowed type restriction for '{object_type}#{tk.relation}'"
    )


def _condition_problem(ts: TypeSystem, tk: TupleKey) -> str | None:
    object_type = get_type(tk.object)
    rel = ts.relation_or_none(object_type, tk.relation)
    restrictions = rel.restrictions if rel else ()
    user_object, user_rel = split_object_relation(tk.user)
    user_type = get_type(user_object)
    if not tk.condition_name:
        for r in restrictions:
            if r.condition or r.type != user_type:
                continue
            if r.relation and r.relation != user_rel:
                continue
            if r.wildcard and not is_typed_wildcard(tk.user):
                continue
            return None
        return "condition is missing"
    condition = ts.conditions.get(tk.condition_name)
    if condition is None:
        return f"undefined condition '{tk.condition_name}'"
    if not any(r.type == user_type and r.condition == tk.condition_name for r in restrictions):
        return f"invalid condition '{tk.condition_name}' for type restriction"
    context = tk.condition_context or {}
    for key in context:
        if key not in condition.parameters:
            return f"found invalid context parameter: {key}"
    try:
        cast_context(condition, context)
    except FGAError as e:
        return e.message
    return None


def validate_tuple(ts: TypeSystem, tk: TupleKey) -> None:
    """Strict validation of a tuple to write or to send as a contextual tuple (2027, 2000)."""
    check_field_limits(tk.user, tk.relation, tk.object)
    try:
        _check_user_object_relation(ts, tk.user, tk.relation, tk.object)
    except _Invalid as e:
        raise invalid(tk, e.message) from None
    if tk.user == f"{tk.object}#{tk.relation}":
        # `document:1#viewer@document:1#viewer` always holds; OpenFGA refuses to store it
        raise FGAError(
            ErrorCode.validation_error,
            f"Invalid tuple '{tuple_to_string(tk)}'. Reason: cannot write a tuple that is implicit",
        )
    problem = _tupleset_problem(ts, tk)
    if problem is None:
        rel = ts.relation_or_none(get_type(tk.object), tk.relation)
        if rel is not None and rel.has_type_info:
            problem = _type_restriction_problem(ts, tk)
            if problem is None:
                condition_problem = _condition_problem(ts, tk)
                if condition_problem is not None:
                    # OpenFGA reports condition problems as validation errors (2000)
                    raise FGAError(
                        ErrorCode.validation_error,
                        f"Invalid tuple '{tuple_to_string(tk)}'. Reason: {condition_problem}",
                    )
    if problem is not None:
        raise invalid(tk, problem)


def invalid(tk: TupleKey, reason: str) -> FGAError:
    return FGAError(
        ErrorCode.invalid_tuple, f"Invalid tuple '{tuple_to_string(tk)}'. Reason: {reason}"
    )


def is_valid_for_read(ts: TypeSystem, tk: TupleKey) -> bool:
    """Whether a stored tuple still makes sense under this model (otherwise it is ignored)."""
    try:
        validate_tuple(ts, tk)
    except FGAError:
        return False
    return True


def check_context_is_object(context: Any) -> dict[str, Any]:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise FGAError(ErrorCode.validation_error, "context must be a JSON object")
    return context
