"""JSON model to DSL text, as OpenFGA's transformer writes it (openfga/language jsontodsl.go).

Relations and condition parameters come out sorted by name, conditions sorted by name (by module
first in modular models), direct assignments first in unions and intersections, nested operators
in parentheses; a model that the DSL cannot express raises DSLConversionError.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


class DSLConversionError(ValueError):
    """The JSON model has a shape the DSL cannot write (or is not a model)."""


def _unsupported(type_name: str, relation: str) -> DSLConversionError:
    return DSLConversionError(
        f"the '{relation}' relation definition under the '{type_name}' type is not supported by "
        "the OpenFGA DSL syntax yet"
    )


def _source_comment(metadata: Any, leading_spaces: str, leading_text: str) -> str:
    metadata = metadata or {}
    module = metadata.get("module") or ""
    source_file = (metadata.get("source_info") or {}).get("file") or ""
    if not module and not source_file:
        return ""
    return f"{leading_spaces}#{leading_text} module: {module}, file: {source_file}\n"


def _sort_key(name: str, metadata: Any) -> tuple[int, str, str, str]:
    """OpenFGA's sortByModule: entries without a module first, then by module, file, name."""
    metadata = metadata or {}
    module = metadata.get("module") or ""
    source_file = (metadata.get("source_info") or {}).get("file") or ""
    return (1 if module else 0, module, source_file, name)


def _type_restriction(reference: JSON) -> str:
    text = str(reference.get("type", ""))
    if reference.get("wildcard") is not None:
        text += ":*"
    if reference.get("relation"):
        text += f"#{reference['relation']}"
    if reference.get("condition"):
        text += f" with {reference['condition']}"
    return text


class _RelationWriter:
    """Writes one relation's rewrite; counts direct assignments, which the DSL allows once."""

    def __init__(self, type_name: str, relation: str, restrictions: list[JSON]) -> None:
        self.type_name = type_name
        self.relation = relation
        self.restrictions = restrictions
        self.direct_count = 0

    def top(self, rewrite: JSON) -> str:
        if rewrite.get("difference") is not None:
            return self.difference(rewrite)
        if rewrite.get("union") is not None:
            return self.chain(rewrite, "union", " or ")
        if rewrite.get("intersection") is not None:
            return self.chain(rewrite, "intersection", " and ")
        return self.sub(rewrite)

    def sub(self, rewrite: JSON) -> str:
        if rewrite.get("this") is not None:
            self.direct_count += 1
            return "[" + ", ".join(_type_restriction(r) for r in self.restrictions) + "]"
        if rewrite.get("computedUserset") is not None:
            return str(rewrite["computedUserset"].get("relation", ""))
        if rewrite.get("tupleToUserset") is not None:
            ttu = rewrite["tupleToUserset"]
            computed = (ttu.get("computedUserset") or {}).get("relation", "")
            tupleset = (ttu.get("tupleset") or {}).get("relation", "")
            return f"{computed} from {tupleset}"
        if rewrite.get("union") is not None:
            return f"({self.chain(rewrite, 'union', ' or ')})"
        if rewrite.get("intersection") is not None:
            return f"({self.chain(rewrite, 'intersection', ' and ')})"
        if rewrite.get("difference") is not None:
            return f"({self.difference(rewrite)})"
        raise _unsupported(self.type_name, self.relation)

    def chain(self, rewrite: JSON, kind: str, separator: str) -> str:
        children = _direct_first(list((rewrite[kind] or {}).get("child") or []))
        return separator.join(self.sub(child) for child in children)

    def difference(self, rewrite: JSON) -> str:
        difference = rewrite["difference"]
        base = self.sub(difference.get("base") or {})
        subtract = self.sub(difference.get("subtract") or {})
        return f"{base} but not {subtract}"


def _direct_first(children: list[JSON]) -> list[JSON]:
    """prioritizeDirectAssignment: the first `this` moves to the front."""
    for index, child in enumerate(children):
        if child.get("this") is not None:
            return [child, *children[:index], *children[index + 1 :]]
    return children


def _direct_is_first(rewrite: JSON) -> bool:
    """isFirstPosition: the single direct assignment is where the DSL can write it."""
    if rewrite.get("this") is not None:
        return True
    difference = rewrite.get("difference")
    if difference is not None and difference.get("base") is not None:
        return _direct_is_first(difference["base"])
    for kind in ("intersection", "union"):
        children = (rewrite.get(kind) or {}).get("child") or []
        if children:
            if any(child.get("this") is not None for child in children):
                return True
            return _direct_is_first(children[0])
    return False


def _relation(type_name: str, name: str, rewrite: JSON, metadata: JSON | None) -> str:
    metadata = metadata or {}
    writer = _RelationWriter(
        type_name, name, list(metadata.get("directly_related_user_types") or [])
    )
    text = writer.top(rewrite or {})
    if writer.direct_count == 0 or (writer.direct_count == 1 and _direct_is_first(rewrite)):
        source = _source_comment(metadata, "    ", " extended by:")
        return f"{source}    define {name}: {text}"
    raise _unsupported(type_name, name)


def _type(definition: JSON, modular: bool) -> str:
    type_name = str(definition.get("type", ""))
    metadata = definition.get("metadata") or {}
    text = f"{_source_comment(metadata, '', '')}type {type_name}"
    relations: JSON = definition.get("relations") or {}
    if relations:
        text += "\n  relations"
        relation_metadata = metadata.get("relations") or {}
        names = sorted(relations)
        if modular:
            names.sort(key=lambda n: _sort_key(n, relation_metadata.get(n)))
        for name in names:
            text += "\n" + _relation(type_name, name, relations[name], relation_metadata.get(name))
    return text


def _parameter_type(type_ref: JSON) -> str:
    name = str(type_ref.get("type_name", "")).replace("TYPE_NAME_", "").lower()
    if name in ("list", "map"):
        generics = type_ref.get("generic_types") or [{}]
        generic = str(generics[0].get("type_name", "")).replace("TYPE_NAME_", "").lower()
        name = f"{name}<{generic}>"
    return name


def _condition(key: str, condition: JSON) -> str:
    if key != condition.get("name"):
        raise DSLConversionError(
            f"the '{key}' condition has a different nested condition name "
            f"('{condition.get('name')}')"
        )
    parameters: JSON = condition.get("parameters") or {}
    signature = ", ".join(f"{p}: {_parameter_type(parameters[p])}" for p in sorted(parameters))
    source = _source_comment(condition.get("metadata"), "", "")
    return f"{source}condition {key}({signature}) {{\n  {condition.get('expression', '')}\n}}\n"


def json_to_dsl(model: dict[str, Any]) -> str:
    """The DSL text for a JSON model, as `fga model transform --output-format fga` writes it."""
    if not isinstance(model, dict):
        raise DSLConversionError("an authorization model must be a JSON object")
    definitions = list(model.get("type_definitions") or [])
    modular = any((d.get("metadata") or {}).get("module") for d in definitions)
    if modular:
        definitions.sort(key=lambda d: _sort_key(str(d.get("type", "")), d.get("metadata")))
    types = "\n".join("\n" + _type(d, modular) for d in definitions)
    if definitions:
        types += "\n"
    conditions: JSON = model.get("conditions") or {}
    names = sorted(conditions, key=lambda n: _sort_key(n, (conditions[n] or {}).get("metadata")))
    conditions_text = "".join("\n" + _condition(n, conditions[n] or {}) for n in names)
    return f"model\n  schema {model.get('schema_version', '')}\n{types}{conditions_text}"
