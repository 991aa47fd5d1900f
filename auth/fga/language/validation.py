"""Model validation as OpenFGA's server runs it on WriteAuthorizationModel.

Two layers, in OpenFGA's order: the request's field rules (openfga/api's protobuf validation:
at least one type, name patterns and lengths, each with its own error code), then the type
system's rules (openfga/openfga pkg/typesystem `NewAndValidate`, all reported as 2056
invalid_authorization_model with OpenFGA's messages): schema version, duplicate types, reserved
names, rewrites that name undefined relations, tuplesets that are not plain direct relations,
type restrictions on undefined types/relations/conditions, relations without an entry point,
computed-relation cycles, and conditions whose parameters or expressions do not compile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from auth.fga.errors import ErrorCode
from auth.fga.language.errors import ModelValidationError

JSON = dict[str, Any]

SUPPORTED_SCHEMA_VERSIONS = ("1.1", "1.2")
_TYPE_PATTERN = re.compile(r"^[^:#@\s]{1,254}$")
_RELATION_PATTERN = re.compile(r"^[^:#@\s]{1,50}$")
_CONDITION_NAME_PATTERN = re.compile(r"^[^\*\s]{1,50}$")
# OpenFGA's ConditionParamTypeRef.TypeName enum and the generic arity each name needs.
PARAMETER_TYPES = {
    "TYPE_NAME_ANY": 0,
    "TYPE_NAME_BOOL": 0,
    "TYPE_NAME_STRING": 0,
    "TYPE_NAME_INT": 0,
    "TYPE_NAME_UINT": 0,
    "TYPE_NAME_DOUBLE": 0,
    "TYPE_NAME_DURATION": 0,
    "TYPE_NAME_TIMESTAMP": 0,
    "TYPE_NAME_MAP": 1,
    "TYPE_NAME_LIST": 1,
    "TYPE_NAME_IPADDRESS": 0,
}
_USERSET_KINDS = (
    "this",
    "computedUserset",
    "tupleToUserset",
    "union",
    "intersection",
    "difference",
)


def _invalid(message: str) -> ModelValidationError:
    return ModelValidationError(ErrorCode.invalid_authorization_model, message)


def _relation_error(type_name: str, relation: str, cause: str) -> ModelValidationError:
    return _invalid(
        f"the definition of relation '{relation}' in object type '{type_name}' is invalid: {cause}"
    )


@dataclass
class _Relation:
    name: str
    rewrite: JSON
    directly_related: list[JSON] = field(default_factory=list)


def _kind(rewrite: Any) -> str | None:
    """Which userset a rewrite is (`this`, `union`, ...), or None if it is none of them."""
    if not isinstance(rewrite, dict):
        return None
    kinds = [k for k in _USERSET_KINDS if rewrite.get(k) is not None]
    return kinds[0] if len(kinds) == 1 else None


def _children(rewrite: JSON) -> list[JSON]:
    kind = _kind(rewrite)
    if kind in ("union", "intersection"):
        return list((rewrite[kind] or {}).get("child") or [])
    if kind == "difference":
        return [
            rewrite["difference"].get("base") or {},
            rewrite["difference"].get("subtract") or {},
        ]
    return []


def _ref_relation(reference: JSON) -> str:
    return reference.get("relation") or ""


def _ref_is_wildcard(reference: JSON) -> bool:
    return reference.get("wildcard") is not None


def _ref_string(reference: JSON) -> str:
    relation = _ref_relation(reference)
    return f"{reference.get('type', '')}#{relation}" if relation else str(reference.get("type", ""))


def _ref_prototext(reference: JSON) -> str:
    """A relation reference as Go prints the protobuf message (its text format)."""
    text = f'type:"{reference.get("type", "")}"'
    if _ref_relation(reference):
        text += f' relation:"{_ref_relation(reference)}"'
    elif _ref_is_wildcard(reference):
        text += " wildcard:{}"
    if reference.get("condition"):
        text += f' condition:"{reference["condition"]}"'
    return text


class _TypeSystem:
    """The model's types and relations, as OpenFGA's TypeSystem indexes them."""

    def __init__(self, model: JSON) -> None:
        self.schema_version = str(model.get("schema_version") or "")
        self.type_names: list[str] = []
        self.relations: dict[str, dict[str, _Relation]] = {}
        for definition in model.get("type_definitions") or []:
            type_name = definition.get("type") or ""
            self.type_names.append(type_name)
            metadata = (definition.get("metadata") or {}).get("relations") or {}
            self.relations[type_name] = {
                name: _Relation(
                    name,
                    rewrite if isinstance(rewrite, dict) else {},
                    list((metadata.get(name) or {}).get("directly_related_user_types") or []),
                )
                for name, rewrite in (definition.get("relations") or {}).items()
            }
        self.conditions: JSON = dict(model.get("conditions") or {})

    def relation(self, type_name: str, relation: str) -> _Relation | None:
        return self.relations.get(type_name, {}).get(relation)

    def tuplesets(self, type_name: str) -> set[str]:
        """Relations of `type_name` used as the tupleset of some `X from Y`."""
        found: set[str] = set()
        stack = [r.rewrite for r in self.relations.get(type_name, {}).values()]
        while stack:
            rewrite = stack.pop()
            if _kind(rewrite) == "tupleToUserset":
                found.add((rewrite["tupleToUserset"].get("tupleset") or {}).get("relation", ""))
            stack.extend(_children(rewrite))
        return found


def validate_model(model: dict[str, Any]) -> None:
    """Raise ModelValidationError (OpenFGA's code and message) if OpenFGA would refuse `model`."""
    try:
        _validate(model)
    except RecursionError:  # rewrites or relation chains thousands deep: refuse, do not crash
        raise _invalid("the authorization model is nested too deeply to validate") from None


def _validate(model: dict[str, Any]) -> None:
    _check_shape(model)
    _check_request_rules(model)
    ts = _TypeSystem(model)
    if ts.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise _invalid("invalid schema version")
    if len(set(ts.type_names)) != len(ts.type_names):
        raise _invalid("an authorization model cannot contain duplicate types")
    _check_names(ts)
    for type_name in sorted(ts.relations):
        for relation_name in sorted(ts.relations[type_name]):
            _check_relation(ts, type_name, relation_name)
    _check_conditions(ts)


# ---- request-level rules (openfga/api field validation) ------------------------------------


def _check_shape(model: Any) -> None:
    """The JSON has the shape of an AuthorizationModel (else 2000, as a malformed request)."""

    def malformed(message: str) -> ModelValidationError:
        return ModelValidationError(ErrorCode.validation_error, message)

    if not isinstance(model, dict):
        raise malformed("an authorization model must be a JSON object")
    definitions = model.get("type_definitions")
    if definitions is not None and not isinstance(definitions, list):
        raise malformed("type_definitions must be a list")
    for index, definition in enumerate(definitions or []):
        if not isinstance(definition, dict):
            raise malformed(f"type_definitions[{index}] must be an object")
        if not isinstance(definition.get("relations") or {}, dict):
            raise malformed(f"type_definitions[{index}].relations must be an object")
        if not isinstance(definition.get("metadata") or {}, dict):
            raise malformed(f"type_definitions[{index}].metadata must be an object")
        metadata = (definition.get("metadata") or {}).get("relations") or {}
        if not isinstance(metadata, dict):
            raise malformed(f"type_definitions[{index}].metadata.relations must be an object")
        for name, info in metadata.items():
            related = (info or {}).get("directly_related_user_types") or []
            if not isinstance(related, list) or not all(isinstance(r, dict) for r in related):
                raise malformed(
                    f"directly_related_user_types of '{definition.get('type')}#{name}' "
                    "must be a list of objects"
                )
    conditions = model.get("conditions")
    if conditions is not None and not isinstance(conditions, dict):
        raise malformed("conditions must be an object")
    for name, condition in (conditions or {}).items():
        if not isinstance(condition, dict):
            raise malformed(f"condition '{name}' must be an object")


def _check_request_rules(model: JSON) -> None:
    definitions = model.get("type_definitions") or []
    if not definitions:
        raise ModelValidationError(
            ErrorCode.type_definitions_too_few_items,
            "invalid WriteAuthorizationModelRequest.TypeDefinitions: "
            "value must contain at least 1 item(s)",
        )
    for definition in definitions:
        type_name = definition.get("type") or ""
        if len(type_name) > 254:
            raise ModelValidationError(
                ErrorCode.type_invalid_length,
                f"invalid TypeDefinition.Type: value length must be at most 254 runes "
                f"(type '{type_name[:40]}...')",
            )
        if type_name and not _TYPE_PATTERN.match(type_name):
            raise ModelValidationError(
                ErrorCode.type_invalid_pattern,
                f"invalid TypeDefinition.Type: value does not match regex pattern "
                f"\"^[^:#@\\s]{{1,254}}$\" (type '{type_name}')",
            )
        for relation in definition.get("relations") or {}:
            if len(relation) > 50:
                raise ModelValidationError(
                    ErrorCode.relations_too_long,
                    f"invalid TypeDefinition.Relations[{relation}]: value length must be at "
                    "most 50 runes",
                )
            if relation and not _RELATION_PATTERN.match(relation):
                raise ModelValidationError(
                    ErrorCode.relations_invalid_pattern,
                    f"invalid TypeDefinition.Relations[{relation}]: value does not match regex "
                    'pattern "^[^:#@\\s]{1,50}$"',
                )
    for name in model.get("conditions") or {}:
        if not _CONDITION_NAME_PATTERN.match(name):
            raise ModelValidationError(
                ErrorCode.validation_error,
                f"invalid AuthorizationModel.Conditions[{name}]: value does not match regex "
                'pattern "^[^\\*\\s]{1,50}$"',
            )


# ---- type-system rules (pkg/typesystem NewAndValidate) --------------------------------------


def _check_names(ts: _TypeSystem) -> None:
    for type_name in ts.type_names:
        if type_name == "":
            raise _invalid("the type name of a type definition cannot be an empty string")
        if type_name in ("self", "this"):
            raise _invalid(f"the definition of type '{type_name}' is invalid")
        for relation in ts.relations[type_name]:
            if relation == "":
                raise _invalid(
                    f"type '{type_name}' defines a relation with an empty string for a name"
                )
            if relation in ("self", "this"):
                raise _relation_error(type_name, relation, "self and this are reserved keywords")


def _check_relation(ts: _TypeSystem, type_name: str, relation_name: str) -> None:
    """validateRelation: rewrite, type restrictions, entry points, then cycles."""
    relation = ts.relations[type_name][relation_name]
    _check_rewrite(ts, type_name, relation_name, relation.rewrite)
    _check_type_restrictions(ts, type_name, relation)
    has_entrypoint, loop = _has_entrypoints(ts, type_name, relation_name, relation.rewrite, {})
    if not has_entrypoint:
        cause = "potential loop" if loop else "no entrypoints defined"
        raise _relation_error(type_name, relation_name, cause)
    if _has_cycle(ts, type_name, relation_name, relation.rewrite, set()):
        raise _relation_error(
            type_name, relation_name, "an authorization model cannot contain a cycle"
        )


def _check_rewrite(ts: _TypeSystem, type_name: str, relation_name: str, rewrite: JSON) -> None:
    """isUsersetRewriteValid: every relation a rewrite names exists where it must."""
    kind = _kind(rewrite)
    if kind is None:
        raise _relation_error(type_name, relation_name, "invalid userset rewrite definition")
    if kind == "computedUserset":
        computed = rewrite["computedUserset"].get("relation") or ""
        if computed == relation_name:
            raise _relation_error(type_name, relation_name, "invalid userset rewrite definition")
        if ts.relation(type_name, computed) is None:
            raise _invalid(f"'{type_name}#{computed}' relation is undefined")
    elif kind == "tupleToUserset":
        ttu = rewrite["tupleToUserset"]
        tupleset_name = (ttu.get("tupleset") or {}).get("relation") or ""
        computed = (ttu.get("computedUserset") or {}).get("relation") or ""
        tupleset = ts.relation(type_name, tupleset_name)
        if tupleset is None:
            raise _invalid(f"'{type_name}#{tupleset_name}' relation is undefined")
        if _kind(tupleset.rewrite) != "this":
            raise _invalid(
                f"the '{type_name}#{tupleset_name}' relation is referenced in at least one "
                "tupleset and thus must be a direct relation"
            )
        if not any(ts.relation(r.get("type", ""), computed) for r in tupleset.directly_related):
            types = " ".join(_ref_prototext(r) for r in tupleset.directly_related)
            raise _invalid(
                f"undefined relation: {computed} does not appear as a relation in any of the "
                f"directly related user types [{types}]"
            )
    for child in _children(rewrite):
        _check_rewrite(ts, type_name, relation_name, child)


def _contains_this(rewrite: JSON) -> bool:
    return _kind(rewrite) == "this" or any(_contains_this(c) for c in _children(rewrite))


def _check_type_restrictions(ts: _TypeSystem, type_name: str, relation: _Relation) -> None:
    """validateTypeRestrictions: `[...]` exactly where `this` is, naming defined things."""
    assignable = _contains_this(relation.rewrite)
    if assignable and not relation.directly_related:
        raise _invalid(
            f"the assignable relation '{relation.name}' in object type '{type_name}' must "
            "contain at least one relation type"
        )
    if not assignable and relation.directly_related:
        raise _invalid(
            f"the non-assignable relation '{relation.name}' in object type '{type_name}' should "
            "not contain a relation type"
        )

    def invalid_type(reference: JSON) -> ModelValidationError:
        return _invalid(
            f"the relation type '{_ref_string(reference)}' on '{relation.name}' in object type "
            f"'{type_name}' is not valid"
        )

    is_tupleset = relation.name in ts.tuplesets(type_name)
    for reference in relation.directly_related:
        related_type = reference.get("type") or ""
        if related_type not in ts.relations:
            raise invalid_type(reference)
        related_relation = _ref_relation(reference)
        if related_relation or _ref_is_wildcard(reference):
            # a tupleset's objects must be plain objects: no usersets, no wildcards
            if is_tupleset:
                raise invalid_type(reference)
            if related_relation and ts.relation(related_type, related_relation) is None:
                raise invalid_type(reference)
        condition = reference.get("condition") or ""
        if condition and condition not in ts.conditions:
            raise _invalid(f"condition {condition} is undefined for relation {relation.name}")


def _has_entrypoints(
    ts: _TypeSystem,
    type_name: str,
    relation_name: str,
    rewrite: JSON,
    visited: dict[str, dict[str, bool]],
) -> tuple[bool, bool]:
    """OpenFGA's hasEntrypoints: (some path reaches a concrete object type, a loop was seen).

    The visited map is copied one level deep per call, as OpenFGA does (`maps.Clone`), so that
    the inner maps are shared between siblings: the results then match OpenFGA's exactly.
    """
    v = dict(visited)
    if type_name in v:
        v[type_name][relation_name] = False
    else:
        v[type_name] = {relation_name: False}
    relation = ts.relation(type_name, relation_name)
    if relation is None:
        raise _invalid(f"undefined type definition for '{type_name}#{relation_name}'")
    kind = _kind(rewrite)
    if kind == "this":
        for reference in relation.directly_related:
            if not _ref_relation(reference) or _ref_is_wildcard(reference):
                v[type_name][relation_name] = True
                return True, False
            assignable_type, assignable_relation = (
                reference.get("type", ""),
                _ref_relation(reference),
            )
            target = ts.relation(assignable_type, assignable_relation)
            if target is None:
                raise _invalid(
                    f"undefined type definition for '{assignable_type}#{assignable_relation}'"
                )
            if assignable_relation in v.get(assignable_type, {}):
                continue
            found, _ = _has_entrypoints(ts, assignable_type, assignable_relation, target.rewrite, v)
            if found:
                return True, False
        return False, False
    if kind == "computedUserset":
        computed_name = rewrite["computedUserset"].get("relation") or ""
        computed = ts.relation(type_name, computed_name)
        if computed is None:
            raise _invalid(f"undefined type definition for '{type_name}#{computed_name}'")
        if computed_name in v.get(type_name, {}):
            return v[type_name][computed_name], True
        return _has_entrypoints(ts, type_name, computed_name, computed.rewrite, v)
    if kind == "tupleToUserset":
        ttu = rewrite["tupleToUserset"]
        tupleset_name = (ttu.get("tupleset") or {}).get("relation") or ""
        computed_name = (ttu.get("computedUserset") or {}).get("relation") or ""
        tupleset = ts.relation(type_name, tupleset_name)
        if tupleset is None:
            raise _invalid(f"undefined type definition for '{type_name}#{tupleset_name}'")
        for reference in tupleset.directly_related:
            assignable_type = reference.get("type", "")
            target = ts.relation(assignable_type, computed_name)
            if target is None:
                continue
            if computed_name in v.get(assignable_type, {}):
                if v[assignable_type][computed_name]:
                    return True, False
                continue
            found, _ = _has_entrypoints(ts, assignable_type, computed_name, target.rewrite, v)
            if found:
                return True, False
        return False, False
    if kind == "union":
        loop = False
        for child in _children(rewrite):
            found, child_loop = _has_entrypoints(ts, type_name, relation_name, child, visited)
            if found:
                return True, False
            loop = loop or child_loop
        return False, loop
    # intersection and difference: every operand needs an entry point
    for child in _children(rewrite):
        found, child_loop = _has_entrypoints(ts, type_name, relation_name, child, visited)
        if not found:
            return False, child_loop
    return True, False


def _has_cycle(
    ts: _TypeSystem, type_name: str, relation_name: str, rewrite: JSON, visited: set[str]
) -> bool:
    """OpenFGA's hasCycle: a relation that reaches itself through computed relations only."""
    visited.add(f"{type_name}#{relation_name}")
    visited_copy = set(visited)
    kind = _kind(rewrite)
    if kind == "computedUserset":
        rewritten = rewrite["computedUserset"].get("relation") or ""
        if f"{type_name}#{rewritten}" in visited:
            return True
        target = ts.relation(type_name, rewritten)
        if target is None:
            raise _invalid(f"'{type_name}#{rewritten}' relation is undefined")
        return _has_cycle(ts, type_name, rewritten, target.rewrite, visited_copy)
    return any(
        _has_cycle(ts, type_name, relation_name, child, visited_copy)
        for child in _children(rewrite)
    )


# ---- conditions -----------------------------------------------------------------------------


def _check_conditions(ts: _TypeSystem) -> None:
    """validateConditions: names match their keys, parameter types decode, expressions compile."""
    for key, condition in ts.conditions.items():
        name = condition.get("name") or ""
        if key != name:
            raise _invalid(f"condition key '{key}' does not match condition name '{name}'")
        parameters = condition.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise _compilation_error(name, "parameters must be an object")
        for parameter, type_ref in parameters.items():
            problem = _parameter_type_problem(type_ref)
            if problem:
                raise _compilation_error(
                    name, f"failed to decode parameter type for parameter '{parameter}': {problem}"
                )
        expression = str(condition.get("expression") or "")
        problem = _expression_problem(name, expression, set(parameters))
        if problem:
            raise _compilation_error(name, problem)


def _compilation_error(condition: str, cause: str) -> ModelValidationError:
    return _invalid(f"failed to compile expression on condition '{condition}' - {cause}")


def _parameter_type_problem(type_ref: Any) -> str | None:
    if not isinstance(type_ref, dict):
        return "a parameter type must be an object"
    type_name = type_ref.get("type_name")
    if type_name not in PARAMETER_TYPES:
        return f"unknown condition parameter type `{type_name}`"
    generics = type_ref.get("generic_types") or []
    if len(generics) != PARAMETER_TYPES[type_name]:
        return (
            f"condition parameter type `{type_name}` requires {PARAMETER_TYPES[type_name]} "
            f"generic types; found {len(generics)}"
        )
    for generic in generics:
        problem = _parameter_type_problem(generic)
        if problem:
            return problem
    return None


# Names CEL knows without declarations (type names and type-conversion functions).
_CEL_BUILTIN_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
    | {"duration", "timestamp", "dyn"}
)
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


def _expression_problem(name: str, expression: str, parameters: set[str]) -> str | None:
    """Why the CEL expression does not compile in an environment declaring `parameters`
    (cel-go's wording where we can give it: `ERROR: <condition>:<line>:<column>: ...`)."""
    import celpy  # imported here: the DSL parser itself needs no CEL

    if not expression.strip():
        return f"ERROR: {name}:1:1: Syntax error: mismatched input '<EOF>'"
    try:
        tree = celpy.Environment().compile(expression)
    except Exception as e:  # celpy reports syntax errors with several exception types
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        line, column = getattr(e, "line", 1), getattr(e, "column", 0) + 1
        return f"ERROR: {name}:{line}:{column}: Syntax error: {first_line}"
    bound: set[str] = set()
    referenced: list[Any] = []
    for node in tree.iter_subtrees_topdown():
        if node.data == "member_dot_arg" and len(node.children) >= 3:
            method, args = node.children[1], node.children[2]
            if str(method) in _MACROS and getattr(args, "children", None):
                first = args.children[0]
                idents = [n for n in first.iter_subtrees() if n.data == "ident"]
                if len(idents) == 1:
                    bound.add(str(idents[0].children[0]))
        elif node.data == "ident":
            referenced.append(node.children[0])
    for token in referenced:
        ident = str(token)
        if ident not in parameters and ident not in bound and ident not in _CEL_BUILTIN_NAMES:
            where = f"{getattr(token, 'line', 1)}:{getattr(token, 'column', 1)}"
            return f"ERROR: {name}:{where}: undeclared reference to '{ident}' (in container '')"
    return None
