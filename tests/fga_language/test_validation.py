"""validate_model: OpenFGA's WriteAuthorizationModel rules, codes and messages.

The expected messages are the ones OpenFGA itself gives (`fga model validate` runs OpenFGA's
type system on the same models; test_oracle.py checks random models against it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auth.fga.errors import ErrorCode, FGAError
from auth.fga.language import ModelValidationError, dsl_to_json, validate_model
from tests.reference import OPENFGA_DATA

H = "model\n  schema 1.1\ntype user\n"
FOLDER = "type folder\n  relations\n    define viewer: [user]\n"

INVALID: dict[str, tuple[str, str]] = {
    "computed relation undefined": (
        H + "type doc\n  relations\n    define viewer: editor\n",
        "'doc#editor' relation is undefined",
    ),
    "computed relation is itself": (
        H + "type doc\n  relations\n    define viewer: [user] or viewer\n",
        "the definition of relation 'viewer' in object type 'doc' is invalid: "
        "invalid userset rewrite definition",
    ),
    "tupleset undefined": (
        H + "type doc\n  relations\n    define viewer: viewer from parent\n",
        "'doc#parent' relation is undefined",
    ),
    "tupleset not a direct relation": (
        H
        + FOLDER
        + "type doc\n  relations\n    define parent: [folder] or owner\n"
        + "    define owner: [user]\n    define viewer: viewer from parent\n",
        "the 'doc#parent' relation is referenced in at least one tupleset and thus must be a "
        "direct relation",
    ),
    "tuple-to-userset relation on no tupleset type": (
        H + FOLDER + "type doc\n  relations\n    define parent: [folder]\n"
        "    define viewer: editor from parent\n",
        "undefined relation: editor does not appear as a relation in any of the directly "
        'related user types [type:"folder"]',
    ),
    "tupleset allows a userset": (
        H + FOLDER + "type doc\n  relations\n    define parent: [folder, folder#viewer]\n"
        "    define viewer: viewer from parent\n",
        "the relation type 'folder#viewer' on 'parent' in object type 'doc' is not valid",
    ),
    "tupleset allows a wildcard": (
        H + FOLDER + "type doc\n  relations\n    define parent: [folder, folder:*]\n"
        "    define viewer: viewer from parent\n",
        "the relation type 'folder' on 'parent' in object type 'doc' is not valid",
    ),
    "restriction on undefined type": (
        H + "type doc\n  relations\n    define viewer: [group]\n",
        "the relation type 'group' on 'viewer' in object type 'doc' is not valid",
    ),
    "restriction on undefined userset relation": (
        H + "type group\ntype doc\n  relations\n    define viewer: [group#member]\n",
        "the relation type 'group#member' on 'viewer' in object type 'doc' is not valid",
    ),
    "undefined condition": (
        H + "type doc\n  relations\n    define viewer: [user with nope]\n",
        "condition nope is undefined for relation viewer",
    ),
    "usersets with no entry point": (
        H + "type doc\n  relations\n    define a: [doc#b]\n    define b: [doc#a]\n",
        "the definition of relation 'a' in object type 'doc' is invalid: no entrypoints defined",
    ),
    "computed loop": (
        H + "type doc\n  relations\n    define a: b\n    define b: a\n",
        "the definition of relation 'a' in object type 'doc' is invalid: potential loop",
    ),
    "intersection with an impossible operand": (
        H + "type doc\n  relations\n    define a: [user]\n    define b: [doc#b]\n"
        "    define c: a and b\n",
        "the definition of relation 'b' in object type 'doc' is invalid: no entrypoints defined",
    ),
    "cycle through computed relations": (
        H + "type doc\n  relations\n    define a: [user] or b\n    define b: [user] or a\n",
        "the definition of relation 'a' in object type 'doc' is invalid: "
        "an authorization model cannot contain a cycle",
    ),
    "reserved type name": (H + "type self\n", "the definition of type 'self' is invalid"),
    "reserved relation name": (
        H + "type doc\n  relations\n    define this: [user]\n",
        "the definition of relation 'this' in object type 'doc' is invalid: "
        "self and this are reserved keywords",
    ),
    "duplicate types": (
        H + "type doc\ntype doc\n",
        "an authorization model cannot contain duplicate types",
    ),
    "schema version 1.0": ("model\n  schema 1.0\ntype user\n", "invalid schema version"),
    "condition with an undeclared name": (
        H + "type doc\n  relations\n    define viewer: [user with c]\n"
        "condition c(x: int) {\n  y > 1\n}\n",
        "failed to compile expression on condition 'c' - ERROR: c:1:1: undeclared reference "
        "to 'y' (in container '')",
    ),
}

VALID = {
    "macros bind their variables": H
    + "type doc\n  relations\n    define viewer: [user with c]\n"
    + "condition c(xs: list<int>, m: map<string>) {\n"
    + '  xs.exists(v, v > 1) && xs.all(w, w < 10) && "a" in m && type(m) == map\n}\n',
    "a wildcard is an entry point": H
    + "type doc\n  relations\n    define a: [user:*]\n    define b: a but not a\n",
    "recursive userset with an entry point": H
    + "type group\n  relations\n    define member: [user, group#member]\n",
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_models_get_openfgas_message_and_code(name: str) -> None:
    dsl, message = INVALID[name]
    with pytest.raises(ModelValidationError) as caught:
        validate_model(dsl_to_json(dsl))
    assert caught.value.message == message
    assert caught.value.code == ErrorCode.invalid_authorization_model == 2056
    assert isinstance(caught.value, FGAError)
    assert caught.value.to_json() == {"code": "invalid_authorization_model", "message": message}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_models_pass(name: str) -> None:
    validate_model(dsl_to_json(VALID[name]))


def test_condition_syntax_error_is_reported_with_the_condition_name() -> None:
    dsl = H + "type doc\n  relations\n    define viewer: [user with c]\n"
    dsl += "condition c(x: int) {\n  x > \n}\n"
    with pytest.raises(ModelValidationError) as caught:
        validate_model(dsl_to_json(dsl))
    assert caught.value.message.startswith(
        "failed to compile expression on condition 'c' - ERROR: c:1:"
    )
    assert "Syntax error" in caught.value.message


def _user_model() -> dict[str, Any]:
    return {"schema_version": "1.1", "type_definitions": [{"type": "user"}]}


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [
        (lambda m: m.update(type_definitions=[]), 2045, "at least 1 item"),
        (lambda m: m.pop("type_definitions"), 2045, "at least 1 item"),
        (lambda m: m["type_definitions"].append({"type": "a:b"}), 2047, "regex pattern"),
        (lambda m: m["type_definitions"].append({"type": "x" * 255}), 2046, "at most 254"),
        (
            lambda m: m["type_definitions"].append(
                {"type": "d", "relations": {"a#b": {"this": {}}}}
            ),
            2050,
            "regex pattern",
        ),
        (
            lambda m: m["type_definitions"].append({"type": "d", "relations": {"r" * 51: {}}}),
            2049,
            "at most 50",
        ),
        (lambda m: m.update(conditions={"bad name": {"name": "bad name"}}), 2000, "Conditions"),
        (lambda m: m.update(schema_version="1.0"), 2056, "invalid schema version"),
        (lambda m: m.update(type_definitions="user"), 2000, "must be a list"),
        (lambda m: m["type_definitions"].append("user"), 2000, "must be an object"),
        (lambda m: m.update(conditions=[]), 2000, "conditions must be an object"),
        (lambda m: m["type_definitions"].append({"type": ""}), 2056, "empty string"),
        (
            lambda m: m["type_definitions"].append({"type": "d", "relations": {"r": {}}}),
            2056,
            "invalid userset rewrite definition",
        ),
        (
            lambda m: m["type_definitions"].append(
                {"type": "d", "relations": {"r": {"this": {}}}, "metadata": None}
            ),
            2056,
            "must contain at least one relation type",
        ),
        (
            lambda m: m["type_definitions"].append(
                {
                    "type": "d",
                    "relations": {"a": {"this": {}}, "b": {"computedUserset": {"relation": "a"}}},
                    "metadata": {
                        "relations": {
                            "a": {"directly_related_user_types": [{"type": "user"}]},
                            "b": {"directly_related_user_types": [{"type": "user"}]},
                        }
                    },
                }
            ),
            2056,
            "the non-assignable relation 'b' in object type 'd' should not contain a relation type",
        ),
    ],
)
def test_request_rules_and_malformed_json(change: Any, code: int, fragment: str) -> None:
    model = _user_model()
    change(model)
    with pytest.raises(ModelValidationError) as caught:
        validate_model(model)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_not_a_dict_is_refused() -> None:
    with pytest.raises(ModelValidationError) as caught:
        validate_model(["user"])  # type: ignore[arg-type]
    assert caught.value.code == 2000


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"type_name": "TYPE_NAME_UNSPECIFIED"}, "unknown condition parameter type"),
        ({"type_name": "TYPE_NAME_LIST"}, "requires 1 generic types; found 0"),
        (
            {"type_name": "TYPE_NAME_INT", "generic_types": [{"type_name": "TYPE_NAME_INT"}]},
            "requires 0 generic types; found 1",
        ),
    ],
)
def test_condition_parameter_types_must_decode(change: dict[str, Any], fragment: str) -> None:
    model = dsl_to_json(
        H + "type doc\n  relations\n    define viewer: [user with c]\n"
        "condition c(x: int) {\n  x > 1\n}\n"
    )
    model["conditions"]["c"]["parameters"]["x"] = change
    with pytest.raises(ModelValidationError) as caught:
        validate_model(model)
    assert "failed to decode parameter type for parameter 'x'" in caught.value.message
    assert fragment in caught.value.message


def test_condition_key_must_match_its_name() -> None:
    model = dsl_to_json(
        H + "type doc\n  relations\n    define viewer: [user with c]\n"
        "condition c(x: int) {\n  x > 1\n}\n"
    )
    model["conditions"]["c"]["name"] = "d"
    with pytest.raises(ModelValidationError, match="condition key 'c' does not match"):
        validate_model(model)


# Of OpenFGA's transformer cases, three are syntactically fine but not valid models.
TRANSFORMER_INVALID = {
    "00-only-schema": (2045, "value must contain at least 1 item(s)"),
    "11-multiple-conditions": (
        2056,
        "failed to compile expression on condition 'doc_viewer_condition' - ERROR: "
        "doc_viewer_condition:1:1: undeclared reference to 'document_attributes'",
    ),
    "14-mixed-operators": (
        2056,
        "the 'document#relation4' relation is referenced in at least one tupleset and thus "
        "must be a direct relation",
    ),
    "15-mixed-operators-with-direct-assignments-once-beginning-of-line": (
        2056,
        "the relation type 'user#follower' on 'relation3' in object type 'document' is not valid",
    ),
}
CASES = sorted((OPENFGA_DATA / "transformer").glob("*"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_transformer_case_models(case: Any) -> None:
    model = json.loads((case / "authorization-model.json").read_text())
    if case.name not in TRANSFORMER_INVALID:
        validate_model(model)
        return
    code, fragment = TRANSFORMER_INVALID[case.name]
    with pytest.raises(ModelValidationError) as caught:
        validate_model(model)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_absurd_nesting_is_refused_not_a_crash() -> None:
    rewrite: dict[str, Any] = {"computedUserset": {"relation": "a"}}
    for _ in range(5000):
        rewrite = {"union": {"child": [rewrite]}}
    model = _user_model()
    model["type_definitions"].append(
        {
            "type": "d",
            "relations": {"a": {"this": {}}, "b": rewrite},
            "metadata": {"relations": {"a": {"directly_related_user_types": [{"type": "user"}]}}},
        }
    )
    with pytest.raises(ModelValidationError, match="nested too deeply") as caught:
        validate_model(model)
    assert caught.value.code == 2056
