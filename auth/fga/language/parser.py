"""Recursive-descent parser for OpenFGA's model DSL (schema 1.1), producing OpenFGA's JSON model.

It follows the grammar of openfga/language (OpenFGAParser.g4) one function per rule, and builds
the same JSON as OpenFGA's transformer: an operator chain becomes one n-ary node, a parenthesised
group one child, direct type restrictions `this` plus the relation's metadata. Syntax errors carry
1-based line and column and, where practical, ANTLR's wording, so they read like OpenFGA's.
"""

from __future__ import annotations

from typing import Any, NoReturn

from auth.fga.language import lexer as t
from auth.fga.language.errors import DSLIssue, DSLSyntaxError
from auth.fga.language.lexer import Token

JSON = dict[str, Any]

_NAME_EXPECTED = (
    "IDENTIFIER",
    "'module'",
    "'model'",
    "'schema'",
    "'extend'",
    "'type'",
    "'relation'",
    "EXTENDED_IDENTIFIER",
)


class _Stop(Exception):
    """Raised internally at the first syntax error; the parse does not try to recover."""


def preprocess(text: str) -> str:
    """Drop comments as OpenFGA's transformer does before parsing.

    A line whose first non-space character is `#` becomes empty; elsewhere everything from
    ` #` on is cut and trailing spaces removed; trailing newlines of the text are dropped.
    Lines and columns stay where they were.
    """
    cleaned: list[str] = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            cleaned.append("")
        else:
            cleaned.append(line.split(" #")[0].rstrip(" "))
    return "\n".join(cleaned).rstrip("\n")


def _expected(kinds: tuple[str, ...]) -> str:
    return kinds[0] if len(kinds) == 1 else "{" + ", ".join(kinds) + "}"


class _Parser:
    """One parse of one DSL text; `model()` returns the JSON or raises DSLSyntaxError."""

    def __init__(self, text: str) -> None:
        self.tokens, lex_errors = t.tokenize(preprocess(text))
        self.pos = 0
        self.syntax_errors: list[DSLIssue] = [
            DSLIssue(e.line, e.column, f"token recognition error at: '{e.text}'", e.text)
            for e in lex_errors
        ]
        self.semantic_errors: list[DSLIssue] = []
        self.is_module = False
        self.module_name = ""
        self.extended_types: set[str] = set()

    # ---- token helpers ----------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        index = min(self.pos + ahead, len(self.tokens) - 1)
        return self.tokens[index]

    def at(self, *kinds: str) -> bool:
        return self.peek().kind in kinds

    def at_seq(self, *kinds: str) -> bool:
        return all(self.peek(i).kind == kind for i, kind in enumerate(kinds))

    def advance(self) -> Token:
        token = self.peek()
        if token.kind != t.EOF:
            self.pos += 1
        return token

    def optional(self, kind: str) -> Token | None:
        return self.advance() if self.at(kind) else None

    def fail(self, message: str, token: Token | None = None) -> NoReturn:
        token = token or self.peek()
        self.syntax_errors.append(DSLIssue(token.line, token.column, message, token.text))
        raise _Stop

    def mismatch(self, *expected: str) -> NoReturn:
        """Report the current token as unexpected, in ANTLR's words."""
        token = self.peek()
        verb = "extraneous" if self.peek(1).kind in expected else "mismatched"
        self.fail(f"{verb} input '{token.display()}' expecting {_expected(expected)}")

    def expect(self, *kinds: str) -> Token:
        if not self.at(*kinds):
            self.mismatch(*kinds)
        return self.advance()

    def expect_space_before(self, *following: str) -> None:
        """A required WHITESPACE; if the next thing is already there, it is "missing"."""
        if not self.at(t.WHITESPACE) and self.at(*following):
            self.fail(f"missing WHITESPACE at '{self.peek().display()}'")
        self.expect(t.WHITESPACE)

    def no_viable_alternative(self) -> NoReturn:
        """A line starts with something that cannot start a line here."""
        newline, token = self.peek(), self.peek(1)
        self.advance()
        if self.peek(1).kind == t.EOF:  # one stray token before the end: ANTLR deletes it
            self.mismatch(t.EOF)
        text = (newline.text + token.text).replace("\n", "\\n")
        self.fail(f"no viable alternative at input '{text}'", token)

    def semantic(self, token: Token, message: str) -> None:
        self.semantic_errors.append(DSLIssue(token.line, token.column, message, token.text))

    def identifier(self) -> Token:
        """identifier: IDENTIFIER | EXTENDED_IDENTIFIER | a keyword that may be a name."""
        return self.expect(*_NAME_EXPECTED)

    def skip_comment_lines(self) -> None:
        """(NEWLINE multiLineComment)?: comment lines the preprocessing left (tab-indented)."""
        while self.at_seq(t.NEWLINE, t.HASH):
            self.advance()
            while not self.at(t.NEWLINE, t.EOF):
                self.advance()

    # ---- main ------------------------------------------------------------------------

    def model(self) -> JSON:
        try:
            model = self.main()
        except _Stop:
            model = {}
        except RecursionError:  # parentheses nested thousands deep: refuse, do not crash
            token = self.peek()
            message = "relation definition nested too deeply"
            self.syntax_errors.append(DSLIssue(token.line, token.column, message, token.text))
            model = {}
        errors = self.syntax_errors + self.semantic_errors
        if errors:
            raise DSLSyntaxError(errors)
        return model

    def main(self) -> JSON:
        """main: WS? NEWLINE? (modelHeader | moduleHeader) NEWLINE? typeDefs conditions EOF."""
        if self.syntax_errors:  # a character no token matches: report it as ANTLR does
            raise _Stop
        self.optional(t.WHITESPACE)
        self.optional(t.NEWLINE)
        model: JSON = {}
        if self.at(t.MODULE):
            self.module_header()
        elif self.at(t.MODEL):
            model["schema_version"] = self.model_header()
        else:
            self.mismatch(t.WHITESPACE, "'#'", t.MODULE, t.MODEL, t.NEWLINE)
        type_definitions = self.type_defs()
        conditions = self.conditions()
        if self.at(t.NEWLINE) and self.peek(1).kind != t.EOF:
            self.no_viable_alternative()
        self.optional(t.NEWLINE)
        if not self.at(t.EOF):
            self.mismatch(t.EOF)
        if type_definitions:
            model["type_definitions"] = type_definitions
        if conditions:
            model["conditions"] = conditions
        return model

    def model_header(self) -> str:
        """modelHeader: MODEL NEWLINE SCHEMA WS SCHEMA_VERSION WS?."""
        self.expect(t.MODEL)
        self.skip_comment_lines()
        self.expect(t.NEWLINE)
        self.expect(t.SCHEMA)
        self.expect(t.WHITESPACE)
        version = self.expect(t.SCHEMA_VERSION).text
        self.optional(t.WHITESPACE)
        return version

    def module_header(self) -> None:
        """moduleHeader: MODULE WS IDENTIFIER WS?."""
        self.expect(t.MODULE)
        self.expect(t.WHITESPACE)
        self.module_name = self.expect(t.IDENTIFIER).text
        self.is_module = True
        self.optional(t.WHITESPACE)

    def at_line_starting(self, *kinds: str) -> bool:
        """Whether the next line (after comment lines) starts with one of `kinds`."""
        offset = 0
        while self.peek(offset).kind == t.NEWLINE and self.peek(offset + 1).kind == t.HASH:
            offset += 2
            while self.peek(offset).kind not in (t.NEWLINE, t.EOF):
                offset += 1
        return self.peek(offset).kind == t.NEWLINE and self.peek(offset + 1).kind in kinds

    def expect_line_end(self) -> None:
        if not self.at(t.NEWLINE, t.EOF):
            self.mismatch(t.EOF, t.NEWLINE)
        if self.at(t.NEWLINE) and self.peek(1).kind not in (
            t.TYPE,
            t.EXTEND,
            t.CONDITION,
            t.DEFINE,
            t.HASH,
            t.EOF,
        ):
            self.no_viable_alternative()

    # ---- type definitions --------------------------------------------------------------

    def type_defs(self) -> list[JSON]:
        """typeDefs: typeDef*."""
        self.expect_line_end()
        type_definitions: list[JSON] = []
        while self.at_line_starting(t.TYPE, t.EXTEND):
            type_definitions.append(self.type_def())
        return type_definitions

    def type_def(self) -> JSON:
        """typeDef: NEWLINE (EXTEND WS)? TYPE WS identifier (NEWLINE RELATIONS relationDecl+)?."""
        self.skip_comment_lines()
        self.expect(t.NEWLINE)
        extend = self.optional(t.EXTEND)
        if extend:
            self.expect(t.WHITESPACE)
        self.expect(t.TYPE)
        self.expect(t.WHITESPACE)
        name_token = self.identifier()
        type_name = name_token.text
        if extend and not self.is_module:
            self.semantic(name_token, "extend can only be used in a modular model")
        if extend and self.is_module:
            if type_name in self.extended_types:
                self.semantic(name_token, f"'{type_name}' is already extended in file.")
            self.extended_types.add(type_name)
        relations: JSON = {}
        metadata: JSON = {}
        if self.at_seq(t.NEWLINE, t.RELATIONS):
            self.advance()
            self.advance()
            if not self.at_line_starting(t.DEFINE):
                if self.at(t.EOF):
                    self.mismatch(t.NEWLINE)
                self.expect_line_end()
                self.skip_comment_lines()
                self.no_viable_alternative()
            while self.at_line_starting(t.DEFINE):
                self.relation_declaration(type_name, relations, metadata, bool(extend))
        self.expect_line_end()
        definition: JSON = {"type": type_name, "relations": relations}
        if self.is_module:
            definition["metadata"] = {"module": self.module_name}
            if metadata:
                definition["metadata"]["relations"] = metadata
        else:
            definition["metadata"] = {"relations": metadata} if metadata else None
        return definition

    def relation_declaration(
        self, type_name: str, relations: JSON, metadata: JSON, in_extension: bool
    ) -> None:
        """relationDeclaration: NEWLINE DEFINE WS identifier WS? ':' WS? relationDef."""
        self.skip_comment_lines()
        self.expect(t.NEWLINE)
        self.expect(t.DEFINE)
        self.expect(t.WHITESPACE)
        name_token = self.identifier()
        self.optional(t.WHITESPACE)
        if not self.at(t.COLON):
            if self.peek(1).kind == t.COLON:
                self.mismatch(t.COLON)
            self.fail(f"missing ':' at '{self.peek().display()}'")
        self.advance()
        self.optional(t.WHITESPACE)
        directly_related: list[JSON] = []
        rewrite = self.relation_def(directly_related)
        self.expect_line_end()
        name = name_token.text
        if name in relations:
            self.semantic(name_token, f"'{name}' is already defined in '{type_name}'")
        relations[name] = rewrite
        metadata[name] = {"directly_related_user_types": directly_related}
        if self.is_module and in_extension:
            metadata[name]["module"] = self.module_name

    # ---- relation definitions ------------------------------------------------------------

    def relation_def(self, directly_related: list[JSON]) -> JSON:
        """relationDef: (directAssignment | grouping | relationRecurse) partials?."""
        if self.at(t.LBRACKET):
            first = self.direct_assignment(directly_related)
        elif self.at(t.LPAREN):
            first = self.relation_recurse(directly_related)
        elif self.at(*_NAME_EXPECTED):
            first = self.rewrite()
        else:
            self.mismatch(t.LBRACKET, t.LPAREN, *_NAME_EXPECTED)
        return self.partials(first)

    def relation_def_no_direct(self) -> JSON:
        """relationDefNoDirect: (grouping | relationRecurseNoDirect) partials?."""
        return self.partials(self.operand())

    def operand(self) -> JSON:
        """grouping | relationRecurseNoDirect: what may follow an operator."""
        if self.at(t.LPAREN):
            return self.relation_recurse_no_direct()
        if self.at(*_NAME_EXPECTED):
            return self.rewrite()
        self.mismatch(t.LPAREN, *_NAME_EXPECTED)

    def partials(self, first: JSON) -> JSON:
        """relationDefPartials: (WS OR WS x)+ | (WS AND WS x)+ | (WS BUT_NOT WS x)."""
        if not (self.at(t.WHITESPACE) and self.peek(1).kind in (t.OR, t.AND, t.BUT_NOT)):
            return first
        operator = self.peek(1).kind
        children = [first]
        while self.at_seq(t.WHITESPACE, operator):
            self.advance()
            self.advance()
            self.expect_space_before(t.LPAREN, *_NAME_EXPECTED)
            children.append(self.operand())
            if operator == t.BUT_NOT:
                break
        if operator == t.OR:
            return {"union": {"child": children}}
        if operator == t.AND:
            return {"intersection": {"child": children}}
        return {"difference": {"base": children[0], "subtract": children[1]}}

    def relation_recurse(self, directly_related: list[JSON]) -> JSON:
        """relationRecurse: '(' WS* (relationDef | relationRecurseNoDirect) WS* ')'."""
        self.expect(t.LPAREN)
        while self.optional(t.WHITESPACE):
            pass
        inner = self.relation_def(directly_related)
        return self.close_paren(inner)

    def relation_recurse_no_direct(self) -> JSON:
        """relationRecurseNoDirect: '(' WS* relationDefNoDirect WS* ')'."""
        self.expect(t.LPAREN)
        while self.optional(t.WHITESPACE):
            pass
        inner = self.relation_def_no_direct()
        return self.close_paren(inner)

    def close_paren(self, inner: JSON) -> JSON:
        while self.optional(t.WHITESPACE):
            pass
        self.expect(t.RPAREN, t.WHITESPACE)
        return inner

    def rewrite(self) -> JSON:
        """relationDefRewrite: identifier (WS FROM WS identifier)?."""
        computed = self.identifier().text
        if self.at_seq(t.WHITESPACE, t.FROM):
            self.advance()
            self.advance()
            self.expect_space_before(*_NAME_EXPECTED)
            tupleset = self.identifier().text
            return {
                "tupleToUserset": {
                    "tupleset": {"relation": tupleset},
                    "computedUserset": {"relation": computed},
                }
            }
        return {"computedUserset": {"relation": computed}}

    def direct_assignment(self, directly_related: list[JSON]) -> JSON:
        """relationDefDirectAssignment: '[' WS? restriction WS? (',' WS? restriction WS?)* ']'."""
        self.expect(t.LBRACKET)
        spaced = self.optional(t.WHITESPACE) is not None
        directly_related.append(self.type_restriction(first_after_bracket=not spaced))
        self.optional(t.WHITESPACE)
        while self.optional(t.COMMA):
            self.optional(t.WHITESPACE)
            directly_related.append(self.type_restriction())
            self.optional(t.WHITESPACE)
        self.expect(t.COMMA, t.WHITESPACE, t.RBRACKET)
        return {"this": {}}

    def type_restriction(self, first_after_bracket: bool = False) -> JSON:
        """relationDefTypeRestriction: NEWLINE? base (WS WITH WS conditionName)? NEWLINE?."""
        self.optional(t.NEWLINE)
        if not self.at(*_NAME_EXPECTED):
            spacing = (t.WHITESPACE,) if first_after_bracket else ()
            self.mismatch(*spacing, *_NAME_EXPECTED, t.NEWLINE)
        reference: JSON = {"type": self.identifier().text}
        if self.optional(t.COLON):
            self.expect(t.STAR)
            reference["wildcard"] = {}
        elif self.optional(t.HASH):
            reference["relation"] = self.identifier().text
        if self.at_seq(t.WHITESPACE, t.WITH):
            self.advance()
            self.advance()
            self.expect_space_before(t.IDENTIFIER)
            reference["condition"] = self.expect(t.IDENTIFIER).text
        self.optional(t.NEWLINE)
        return reference

    # ---- conditions ----------------------------------------------------------------------

    def conditions(self) -> JSON:
        """conditions: condition*."""
        conditions: JSON = {}
        while self.at_line_starting(t.CONDITION):
            self.condition(conditions)
        return conditions

    def condition(self, conditions: JSON) -> None:
        """condition: NEWLINE CONDITION WS name WS? '(' params ')' WS? '{' expression '}'."""
        self.skip_comment_lines()
        self.expect(t.NEWLINE)
        self.expect(t.CONDITION)
        self.expect(t.WHITESPACE)
        name_token = self.expect(t.IDENTIFIER)
        name = name_token.text
        if name in conditions:
            self.semantic(name_token, f"condition '{name}' is already defined in the model")
        self.optional(t.WHITESPACE)
        self.expect(t.LPAREN)
        self.optional(t.WHITESPACE)
        parameters: JSON = {}
        self.condition_parameter(name, parameters)
        self.optional(t.WHITESPACE)
        while self.optional(t.COMMA):
            self.optional(t.WHITESPACE)
            self.condition_parameter(name, parameters)
            self.optional(t.WHITESPACE)
        self.optional(t.NEWLINE)
        self.expect(t.COMMA, t.WHITESPACE, t.NEWLINE, t.RPAREN)
        self.optional(t.WHITESPACE)
        self.expect(t.LBRACE)
        self.optional(t.NEWLINE)
        self.optional(t.WHITESPACE)
        expression = self.condition_expression()
        self.expect(t.RBRACE)
        definition: JSON = {"name": name, "expression": expression, "parameters": parameters}
        if self.is_module:
            definition["metadata"] = {"module": self.module_name}
        conditions[name] = definition
        self.expect_line_end()

    def condition_parameter(self, condition_name: str, parameters: JSON) -> None:
        """conditionParameter: NEWLINE? IDENTIFIER WS? ':' WS? parameterType."""
        self.optional(t.NEWLINE)
        name_token = self.expect(t.WHITESPACE, t.IDENTIFIER, t.NEWLINE)
        if name_token.kind != t.IDENTIFIER:
            self.pos -= 1
            self.mismatch(t.IDENTIFIER)
        self.optional(t.WHITESPACE)
        self.expect(t.COLON)
        self.optional(t.WHITESPACE)
        if name_token.text in parameters:
            self.semantic(
                name_token,
                f"parameter '{name_token.text}' is already defined in the condition "
                f"'{condition_name}'",
            )
        parameters[name_token.text] = self.parameter_type()

    def parameter_type(self) -> JSON:
        """parameterType: PARAM_TYPE | PARAM_CONTAINER '<' PARAM_TYPE '>'."""
        token = self.expect(t.PARAM_TYPE, t.PARAM_CONTAINER)
        if token.kind == t.PARAM_TYPE:
            return {"type_name": f"TYPE_NAME_{token.text.upper()}"}
        self.expect(t.LESS)
        generic = self.expect(t.PARAM_TYPE)
        self.expect(t.GREATER)
        return {
            "type_name": f"TYPE_NAME_{token.text.upper()}",
            "generic_types": [{"type_name": f"TYPE_NAME_{generic.text.upper()}"}],
        }

    def condition_expression(self) -> str:
        """conditionExpression: any tokens up to the first `}`, kept as written (minus `//`
        comments); trailing newlines are dropped, as OpenFGA's transformer does."""
        parts: list[str] = []
        while not self.at(t.RBRACE, t.EOF):
            parts.append(self.advance().text)
        return "".join(parts).rstrip("\n")


def dsl_to_json(text: str) -> JSON:
    """OpenFGA's JSON model for a DSL text; raises DSLSyntaxError listing every problem."""
    return _Parser(text).model()


def module_to_json(text: str) -> tuple[JSON, set[str], str]:
    """A module file (`module NAME` ...): its JSON, the types it extends, and its name."""
    parser = _Parser(text)
    model = parser.model()
    if not parser.is_module:
        raise DSLSyntaxError([DSLIssue(1, 1, "a module file must start with `module NAME`", "")])
    return model, set(parser.extended_types), parser.module_name
