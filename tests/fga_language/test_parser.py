"""The DSL parser on cases beyond OpenFGA's files: what OpenFGA's transformer does with comments,
CEL bodies, keywords as names, nesting, line endings, and how errors are reported."""

from __future__ import annotations

from typing import Any

import pytest

from auth.fga.language import DSLIssue, DSLSyntaxError, dsl_to_json
from auth.fga.language.lexer import tokenize

H = "model\n  schema 1.1\ntype user\n"
COND = H + "type d\n  relations\n    define v: [user with c]\n"


def relations(dsl: str, type_name: str = "d") -> dict[str, Any]:
    model = dsl_to_json(dsl)
    return next(t for t in model["type_definitions"] if t["type"] == type_name)["relations"]


def test_condition_body_is_kept_as_written_minus_cel_comments() -> None:
    # OpenFGA drops `//` comments and trailing spaces of lines, keeps the final line break
    # and indentation before a `}` that is indented.
    model = dsl_to_json(COND + "condition c(x: int) {\n  x < 1 // hi\n  && x > 0  \n  }\n")
    assert model["conditions"]["c"]["expression"] == "x < 1 \n  && x > 0\n  "


def test_condition_on_one_line_and_spaced_signature() -> None:
    model = dsl_to_json(COND + "condition c ( x : int , y:list<string> ) {x < 1}\n")
    condition = model["conditions"]["c"]
    assert condition["expression"] == "x < 1"
    assert condition["parameters"] == {
        "x": {"type_name": "TYPE_NAME_INT"},
        "y": {"type_name": "TYPE_NAME_LIST", "generic_types": [{"type_name": "TYPE_NAME_STRING"}]},
    }


def test_comments_are_dropped_everywhere() -> None:
    dsl = "# head\n" + H + "type d\n  relations\n    define v: [user] # viewers\n"
    dsl += "    # between\n    define w: v\n"
    assert relations(dsl) == {"v": {"this": {}}, "w": {"computedUserset": {"relation": "v"}}}


def test_keywords_and_extended_identifiers_as_names() -> None:
    dsl = H + "type model\n  relations\n    define type: [user]\n"
    dsl += "    define schema: type or type from relation\n    define relation: [model]\n"
    rels = relations(dsl, "model")
    assert rels["schema"]["union"]["child"][1] == {
        "tupleToUserset": {
            "tupleset": {"relation": "relation"},
            "computedUserset": {"relation": "type"},
        }
    }
    model = dsl_to_json(H + "type a.b/c\n  relations\n    define x-y: [a.b/c#x-y, user]\n")
    metadata = model["type_definitions"][1]["metadata"]["relations"]["x-y"]
    assert metadata["directly_related_user_types"][0] == {"type": "a.b/c", "relation": "x-y"}


def test_words_that_start_with_operators_are_names() -> None:
    dsl = H + "type d\n  relations\n    define android: [user]\n"
    dsl += "    define ornament: android or android\n"
    assert relations(dsl)["ornament"] == {
        "union": {
            "child": [
                {"computedUserset": {"relation": "android"}},
                {"computedUserset": {"relation": "android"}},
            ]
        }
    }


def test_nesting_makes_one_child_per_group_and_drops_redundant_parens() -> None:
    dsl = H + "type d\n  relations\n    define a: [user]\n"
    dsl += "    define b: ((a or a) and (a but not a)) or a\n"
    dsl += "    define c: ([user] or a)\n    define e: (([user]))\n"
    rels = relations(dsl)
    a = {"computedUserset": {"relation": "a"}}
    assert rels["b"] == {
        "union": {
            "child": [
                {
                    "intersection": {
                        "child": [
                            {"union": {"child": [a, a]}},
                            {"difference": {"base": a, "subtract": a}},
                        ]
                    }
                },
                a,
            ]
        }
    }
    assert rels["c"] == {"union": {"child": [{"this": {}}, a]}}
    assert rels["e"] == {"this": {}}


@pytest.mark.parametrize(
    "dsl",
    [
        "model\r\n  schema 1.1\r\ntype user\r\n  relations\r\n    define v: [user]\r\n",
        "model\n\tschema 1.1\ntype user\n\trelations\n\t\tdefine v: [user]\n",
        "  model\n  schema 1.1\ntype user\n  relations\n    define v: [\n      user\n    ]\n",
    ],
    ids=["crlf", "tabs", "spaces-and-multiline-restrictions"],
)
def test_line_endings_and_indentation_do_not_matter(dsl: str) -> None:
    assert relations(dsl, "user") == {"v": {"this": {}}}


def test_module_files_carry_their_module_name() -> None:
    model = dsl_to_json(
        "module foo\n\ntype user\n\nextend type bar\n  relations\n    define v: [user]\n"
    )
    user, bar = model["type_definitions"]
    assert user["metadata"] == {"module": "foo"}
    assert bar["metadata"]["relations"]["v"]["module"] == "foo"


@pytest.mark.parametrize(
    ("dsl", "line", "column", "message"),
    [
        (
            H + "type d\n  relations\n    define hing: [user]\n    define b: hing but nothing\n",
            7,
            27,
            "missing WHITESPACE at 'hing'",
        ),
        (H + "type d\n  relations\n", 5, 12, "mismatched input '<EOF>' expecting NEWLINE"),
        (
            COND + 'condition c(x: map<int>) {\n  x == {"a": 1}\n}\n',
            9,
            1,
            "extraneous input '}' expecting <EOF>",
        ),
        (
            H + "type d\n  relations\n    define v: [user] @\n",
            6,
            22,
            "token recognition error at: '@'",
        ),
        (
            COND + "condition c(x: int,\n y: int) {x < y}\n",
            7,
            20,
            "token recognition error at: '\\n'",
        ),
        (
            "",
            1,
            1,
            "mismatched input '<EOF>' expecting {WHITESPACE, '#', 'module', 'model', NEWLINE}",
        ),
    ],
    ids=[
        "missing-space",
        "empty-relations",
        "cel-map-literal",
        "bad-char",
        "newline-in-params",
        "empty",
    ],
)
def test_errors_give_openfgas_position_and_words(
    dsl: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(DSLSyntaxError) as caught:
        dsl_to_json(dsl)
    first = caught.value.errors[0]
    assert (first.line, first.column, first.message.replace("\n", "\\n")) == (line, column, message)


def test_syntax_error_lists_every_issue_readably() -> None:
    dsl = H + "type d\n  relations\n    define v: [user]\n    define v: [user]\n"
    dsl += "condition c(a: int, a: int) {a > 1}\ncondition c(a: int) {a > 1}\n"
    with pytest.raises(DSLSyntaxError) as caught:
        dsl_to_json(dsl)
    assert caught.value.errors == [
        DSLIssue(7, 12, "'v' is already defined in 'd'", "v"),
        DSLIssue(8, 21, "parameter 'a' is already defined in the condition 'c'", "a"),
        DSLIssue(9, 11, "condition 'c' is already defined in the model", "c"),
    ]
    text = str(caught.value)
    assert text.startswith("3 errors in the model:")
    assert "line 9, column 11: condition 'c' is already defined in the model" in text
    assert isinstance(caught.value, ValueError)


def test_tokens_carry_positions() -> None:
    tokens, errors = tokenize("model\n  schema 1.1")
    assert errors == []
    assert [(k.kind, k.text, k.line, k.column) for k in tokens] == [
        ("'model'", "model", 1, 1),
        ("NEWLINE", "\n  ", 1, 6),
        ("'schema'", "schema", 2, 3),
        ("WHITESPACE", " ", 2, 9),
        ("SCHEMA_VERSION", "1.1", 2, 10),
        ("<EOF>", "", 2, 13),
    ]


def test_absurd_nesting_is_a_syntax_error_not_a_crash() -> None:
    depth = 5000
    dsl = H + "type d\n  relations\n    define a: [user]\n"
    dsl += "    define b: " + "(" * depth + "a" + ")" * depth + "\n"
    with pytest.raises(DSLSyntaxError) as caught:
        dsl_to_json(dsl)
    assert caught.value.errors[0].message == "relation definition nested too deeply"
    assert caught.value.errors[0].line == 7
