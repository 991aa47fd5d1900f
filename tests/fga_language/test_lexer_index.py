"""The lexer tries only the rules that can start with the next character: on every input it
must pick the same tokens as trying every rule (the longest match, ties by rule order)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from auth.fga.language import lexer

REFERENCE = Path(__file__).parents[1] / "reference" / "openfga"
ALPHABET = [*list("abmlixyz0159_-./:#,()[]{}<>=!&|+*%?uUeE\"' \t\n\r\\"), "é", "→", "\x0c"]


def _every_rule(rules: list[tuple[str, re.Pattern[str]]], text: str, pos: int) -> tuple[str, str]:
    best_kind, best_text = "", ""
    for kind, pattern in rules:
        match = pattern.match(text, pos)
        if match and len(match.group()) > len(best_text):
            best_kind, best_text = kind, match.group()
    return best_kind, best_text


def _texts() -> list[str]:
    base = [p.read_text() for p in sorted(REFERENCE.glob("transformer/*/*.fga"))]
    rng = random.Random(14)
    out = list(base)
    for _ in range(1500):
        t = rng.choice(base)
        i = rng.randrange(len(t) + 1)
        noise = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 10)))
        out.append(t[:i] + noise + t[i:])
    return out


def test_indexed_rules_tokenize_as_every_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    fast = [lexer.tokenize(t) for t in texts]
    monkeypatch.setattr(lexer, "_longest_match", _every_rule)
    slow = [lexer.tokenize(t) for t in texts]
    assert fast == slow
