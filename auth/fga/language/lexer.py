"""Tokenizer for OpenFGA's model DSL, following the token rules of openfga/language's ANTLR lexer.

ANTLR picks the longest match at each position and, on a tie, the rule listed first; this
tokenizer does the same, so that words such as `android` stay identifiers while `and` is an
operator. `condition` switches to the parameter-list mode until the closing parenthesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Token kinds (ANTLR's names, so that error messages read like OpenFGA's).
HASH, COLON, COMMA = "'#'", "':'", "','"
AND, OR, BUT_NOT, FROM = "'and'", "'or'", "'but not'", "'from'"
MODULE, MODEL, SCHEMA, EXTEND, TYPE = "'module'", "'model'", "'schema'", "'extend'", "'type'"
CONDITION, RELATIONS, RELATION, DEFINE, WITH = (
    "'condition'",
    "'relations'",
    "'relation'",
    "'define'",
    "'with'",
)
LESS, GREATER = "'<'", "'>'"
LBRACKET, RBRACKET, LBRACE, RBRACE, LPAREN, RPAREN = "'['", "']'", "'{'", "'}'", "'('", "')'"
STAR = "'*'"
SCHEMA_VERSION = "SCHEMA_VERSION"
WHITESPACE = "WHITESPACE"
NEWLINE = "NEWLINE"
IDENTIFIER = "IDENTIFIER"
EXTENDED_IDENTIFIER = "EXTENDED_IDENTIFIER"
CEL_COMMENT = "CEL_COMMENT"
PARAM_CONTAINER = "CONDITION_PARAM_CONTAINER"
PARAM_TYPE = "CONDITION_PARAM_TYPE"
EOF = "<EOF>"

# Keywords that may also be used as names (OpenFGA's `identifier` rule).
NAME_KINDS = frozenset(
    {IDENTIFIER, EXTENDED_IDENTIFIER, MODULE, MODEL, SCHEMA, EXTEND, TYPE, RELATION}
)

_DIGITS = r"[0-9]+"
_EXPONENT = r"[eE][+-]?[0-9]+"
_ESC = r"""\\(?:[abfnrtv"'\\?`]|[xX][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2})"""
_STRINGS = [
    rf'"(?:{_ESC}|[^\\"\n\r])*"',
    rf"'(?:{_ESC}|[^\\'\n\r])*'",
    rf'"""(?:{_ESC}|[^\\])*?"""',
    rf"'''(?:{_ESC}|[^\\])*?'''",
    r'[rR]"[^"\n\r]*"',
    r"[rR]'[^'\n\r]*'",
    r'[rR]"""[\s\S]*?"""',
    r"[rR]'''[\s\S]*?'''",
]


def _literal(kind: str) -> tuple[str, re.Pattern[str]]:
    return kind, re.compile(re.escape(kind[1:-1]))


# Default mode, in the lexer's rule order (the order breaks ties between equal lengths).
_DEFAULT_RULES: list[tuple[str, re.Pattern[str]]] = [
    _literal(HASH),
    _literal(COLON),
    _literal(COMMA),
    _literal(AND),
    _literal(OR),
    _literal(BUT_NOT),
    _literal(FROM),
    _literal(MODULE),
    _literal(MODEL),
    _literal(SCHEMA),
    (SCHEMA_VERSION, re.compile(r"[0-9]+\.[0-9]+")),
    _literal(EXTEND),
    _literal(TYPE),
    _literal(CONDITION),
    _literal(RELATIONS),
    _literal(RELATION),
    _literal(DEFINE),
    _literal(WITH),
    *(
        _literal(f"'{op}'")
        for op in ("==", "!=", "in", "<", "<=", ">=", ">", "&&", "||", "[", "]", "{", "}")
    ),
    *(_literal(f"'{op}'") for op in ("(", ")", ".", "-", "!", "?", "+", "*", "/", "%")),
    *(_literal(f"'{word}'") for word in ("true", "false", "null")),
    (WHITESPACE, re.compile(r"[\t \f]+")),
    (CEL_COMMENT, re.compile(r"//[^\n]*")),
    (
        "NUM_FLOAT",
        re.compile(
            rf"{_DIGITS}\.{_DIGITS}(?:{_EXPONENT})?|{_DIGITS}{_EXPONENT}|\.{_DIGITS}(?:{_EXPONENT})?"
        ),
    ),
    ("NUM_INT", re.compile(r"0x[0-9a-fA-F]+|[0-9]+")),
    ("NUM_UINT", re.compile(r"(?:0x[0-9a-fA-F]+|[0-9]+)[uU]")),
    *(("STRING", re.compile(pattern)) for pattern in _STRINGS),
    *(("BYTES", re.compile("[bB]" + pattern)) for pattern in _STRINGS),
    (IDENTIFIER, re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")),
    (EXTENDED_IDENTIFIER, re.compile(r"[A-Za-z_](?:[/.\-]?[A-Za-z0-9_]+)*")),
    (NEWLINE, re.compile(r"(?:[\t \f]*(?:\r?\n|\r|\f)[\t \f]*)+")),
]

# Parameter-list mode, entered by `condition` and left at `)`.
_CONDITION_RULES: list[tuple[str, re.Pattern[str]]] = [
    _literal(RPAREN),
    (PARAM_CONTAINER, re.compile(r"map|list")),
    (
        PARAM_TYPE,
        re.compile(r"bool|string|int|uint|double|duration|timestamp|ipaddress"),
    ),
    _literal(LESS),
    _literal(GREATER),
    _literal(LPAREN),
    _literal(COLON),
    _literal(COMMA),
    (WHITESPACE, re.compile(r"[\t \f]+")),
    (IDENTIFIER, re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")),
]


@dataclass(frozen=True)
class Token:
    """A token with its 1-based line and column and its offset in the text."""

    kind: str
    text: str
    line: int
    column: int
    offset: int

    def display(self) -> str:
        """The token as ANTLR quotes it in messages (newlines escaped)."""
        if self.kind == EOF:
            return "<EOF>"
        return self.text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


@dataclass(frozen=True)
class LexError:
    """A character no token rule matches."""

    line: int
    column: int
    text: str


_Rules = list[tuple[str, re.Pattern[str]]]
# continuations that let every rule show which first characters it can start with
_PROBE_TAILS = (
    "",
    "0",
    "u",
    "0u",
    "00",
    ".0",
    "0.0",
    "x0",
    "e1",
    "a",
    " ",
    "\n",
    '"',
    "'",
    '""',
    "''",
    '"""""',
    "'''''",
    "/",
    "*/",
)


def _by_first_char(rules: _Rules) -> dict[str, _Rules]:
    """For each ASCII character, the rules (in order) that can match text starting with it:
    most positions then try two or three rules instead of all of them."""

    def starts(kind: str, pattern: re.Pattern[str], c: str) -> bool:
        if kind.startswith("'") and kind.endswith("'") and len(kind) > 2:
            return kind[1] == c  # a literal token
        if re.fullmatch(r"[a-z|]+", pattern.pattern):  # a choice of words
            return any(word[:1] == c for word in pattern.pattern.split("|"))
        return any(pattern.match(c + tail) for tail in _PROBE_TAILS)

    return {
        chr(code): [(kind, pattern) for kind, pattern in rules if starts(kind, pattern, chr(code))]
        for code in range(128)
    }


_FIRST_CHAR: dict[int, dict[str, _Rules]] = {}


def _longest_match(rules: _Rules, text: str, pos: int) -> tuple[str, str]:
    table = _FIRST_CHAR.get(id(rules))
    if table is None:
        table = _FIRST_CHAR[id(rules)] = _by_first_char(rules)
    candidates = table.get(text[pos], rules)  # any other character: every rule
    best_kind, best_text = "", ""
    for kind, pattern in candidates:
        match = pattern.match(text, pos)
        if match and len(match.group()) > len(best_text):
            best_kind, best_text = kind, match.group()
    return best_kind, best_text


def tokenize(text: str) -> tuple[list[Token], list[LexError]]:
    """Split `text` into tokens (hidden CEL comments dropped) ending with an EOF token.

    Unrecognised characters are skipped, as ANTLR does, and reported in the second list.
    """
    tokens: list[Token] = []
    errors: list[LexError] = []
    pos, line, column = 0, 1, 1
    in_condition_params = False
    while pos < len(text):
        rules = _CONDITION_RULES if in_condition_params else _DEFAULT_RULES
        kind, matched = _longest_match(rules, text, pos)
        if not matched:
            errors.append(LexError(line, column, text[pos]))
            matched = text[pos]
        else:
            if kind == CONDITION:
                in_condition_params = True
            elif kind == RPAREN and in_condition_params:
                in_condition_params = False
            if kind != CEL_COMMENT:
                tokens.append(Token(kind, matched, line, column, pos))
        pos += len(matched)
        newlines = matched.count("\n") + matched.count("\r") - matched.count("\r\n")
        if newlines:
            line += newlines
            column = len(re.split(r"\r\n|\r|\n", matched)[-1]) + 1
        else:
            column += len(matched)
    tokens.append(Token(EOF, "", line, column, pos))
    return tokens, errors
