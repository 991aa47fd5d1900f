"""Modular models (schema 1.2): an `fga.mod` manifest naming `.fga` files that start with
`module NAME`, combined into one model as OpenFGA's transformer does (its
`TransformModFile` and `TransformModuleFilesToModel`), with the module and source file of every
type, extended relation and condition in the metadata.

- `read_mod_file(text)`: the manifest's `.fga` paths; `ModularModelError` if it is invalid;
- `modules_to_model([(name, text), ...])`: the combined JSON model (schema 1.2);
- `load_modular_model(path)`: both, reading the files beside the manifest.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from auth.fga.language.errors import DSLSyntaxError
from auth.fga.language.parser import module_to_json

JSON = dict[str, Any]


class ModularModelError(ValueError):
    """An invalid manifest or module set; `errors` are OpenFGA's messages, one per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        plural = "s" if count > 1 else ""
        super().__init__(f"{count} error{plural} occurred:\n\t* " + "\n\t* ".join(self.errors))


def _position(node: yaml.Node | None) -> tuple[int, int]:
    if node is None:
        return 1, 1
    return node.start_mark.line + 1, node.start_mark.column + 1


def read_mod_file(text: str) -> list[str]:
    """The `contents` of an `fga.mod`, validated as OpenFGA validates it."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ModularModelError([f"invalid fga.mod: {e}"]) from None
    fields: dict[str, yaml.Node] = {}
    if isinstance(root, yaml.MappingNode):
        fields = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    errors: list[str] = []

    def error(node: yaml.Node | None, message: str) -> None:
        line, column = _position(node)
        errors.append(f"validation error at line={line}, column={column}: {message}")

    schema = fields.get("schema")
    if schema is None:
        error(None, "missing schema field")
    elif not isinstance(schema, yaml.ScalarNode) or schema.tag != "tag:yaml.org,2002:str":
        value = schema.value if isinstance(schema, yaml.ScalarNode) else ""
        error(schema, f"unexpected schema type, expected string got value {value}")
    elif schema.value != "1.2":
        error(schema, "unsupported schema version, fga.mod only supported in version `1.2`")
    contents = fields.get("contents")
    files: list[str] = []
    if contents is None:
        error(None, "missing contents field")
    elif not isinstance(contents, yaml.SequenceNode):
        value = contents.value if isinstance(contents, yaml.ScalarNode) else ""
        error(contents, f"unexpected contents type, expected list of strings got value {value}")
    else:
        for item in contents.value:
            if not isinstance(item, yaml.ScalarNode) or item.tag != "tag:yaml.org,2002:str":
                value = item.value if isinstance(item, yaml.ScalarNode) else ""
                error(item, f"unexpected contents item type, expected string got value {value}")
            elif not item.value.endswith(".fga"):
                error(item, f"contents items should use fga file extension, got {item.value}")
            else:
                files.append(item.value)
    if errors:
        raise ModularModelError(errors)
    return files


def _where(lines: list[str], pattern: str, name: str) -> tuple[int, int]:
    """1-based line and column of `name` on the first line matching `pattern` (as OpenFGA's
    utils find a type, relation or condition in a file)."""
    regex = re.compile(pattern.format(re.escape(name)))
    for index, line in enumerate(lines):
        if regex.search(line):
            return index + 1, line.find(name) + 1
    return 1, 1


def modules_to_model(files: list[tuple[str, str]]) -> JSON:
    """One schema 1.2 model from module files `(name, text)`, in order."""
    errors: list[str] = []
    types: list[JSON] = []
    by_name: dict[str, JSON] = {}
    extensions: list[tuple[str, JSON]] = []
    conditions: dict[str, JSON] = {}
    file_lines: dict[str, list[str]] = {}

    def error(file: str, pattern: str, name: str, message: str) -> None:
        line, column = _where(file_lines[file], pattern, name)
        errors.append(f"transformation error at line={line}, column={column}: {message}")

    for name, text in files:
        file_lines[name] = text.split("\n")
        try:
            module, extended, module_name = module_to_json(text)
        except DSLSyntaxError as e:
            errors.extend(str(issue) for issue in e.errors)
            continue
        for td in module.get("type_definitions") or []:
            type_name = td["type"]
            if type_name in extended:
                extensions.append((name, td))
                continue
            if type_name in by_name:
                error(
                    name, r"^\s*type\s+{}\s*$", type_name, f"duplicate type definition {type_name}"
                )
                continue
            td.setdefault("metadata", {})["source_info"] = {"file": name}
            by_name[type_name] = td
            types.append(td)
        for cname, condition in (module.get("conditions") or {}).items():
            if cname in conditions:
                error(name, r"^\s*condition\s+{}\b", cname, f"duplicate condition {cname}")
                continue
            metadata = condition.setdefault("metadata", {}) or {}
            metadata.update({"module": module_name, "source_info": {"file": name}})
            condition["metadata"] = metadata
            conditions[cname] = condition

    for name, td in extensions:
        type_name = td["type"]
        original = by_name.get(type_name)
        if original is None:
            error(
                name,
                r"^\s*extend\s+type\s+{}\s*$",
                type_name,
                f"extended type {type_name} does not exist",
            )
            continue
        relation_meta = (td.get("metadata") or {}).get("relations") or {}
        original_meta = original.setdefault("metadata", {})
        if not original.get("relations"):
            original["relations"] = copy.deepcopy(td.get("relations") or {})
            original_meta["relations"] = copy.deepcopy(relation_meta)
            for meta in original_meta["relations"].values():
                meta["source_info"] = {"file": name}
            continue
        for relation, rewrite in (td.get("relations") or {}).items():
            if relation in original["relations"]:
                error(
                    name,
                    r"^\s*define\s+{}\s*:",
                    relation,
                    f"relation {relation} already exists on type {type_name}",
                )
                continue
            meta = copy.deepcopy(relation_meta.get(relation) or {})
            meta["source_info"] = {"file": name}
            original["relations"][relation] = rewrite
            original_meta.setdefault("relations", {})[relation] = meta

    if errors:
        raise ModularModelError(errors)
    return {"schema_version": "1.2", "type_definitions": types, "conditions": conditions}


def load_modular_model(path: Path) -> JSON:
    """The model an `fga.mod` describes, its files read relative to the manifest."""
    manifest = path.read_text()
    files = []
    for relative in read_mod_file(manifest):
        target = path.parent / relative
        try:
            files.append((relative, target.read_text()))
        except OSError as e:
            raise ModularModelError([f"cannot read module file {relative}: {e.strerror}"]) from None
    return modules_to_model(files)
