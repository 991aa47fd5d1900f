"""Fixtures for the invariant attacks: the approvals `world` (alice, connected to the local
GitHub, a ledger of the test's own), a scripted chat model, and a scanner for token strings."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.approvals.conftest import thread_config, world  # noqa: F401 (fixtures)
from tests.graph.conftest import github_url, provider  # noqa: F401 (fixtures)
from tests.graph.scripted import ScriptedModel


@pytest.fixture
def scripted(monkeypatch) -> ScriptedModel:
    """The agent's chat model replaced by one that replies with `scripted.script` first."""
    model = ScriptedModel()
    model.script = []
    monkeypatch.setattr("graph.nodes.agent.chat_model", lambda settings: model)
    return model


def folder_bytes(*roots: Path) -> bytes:
    """Every file's bytes under `roots` (SQLite files with their WAL, Chroma folders)."""
    out = b""
    for root in roots:
        paths: Iterable[Path] = [root] if root.is_file() else root.rglob("*")
        for path in paths:
            if path.is_file():
                out += path.read_bytes()
    return out


def leaks(secrets: dict[str, str], haystacks: dict[str, str | bytes]) -> list[str]:
    """`secret name in place` for every secret found in any haystack (empty: no leak)."""
    found = []
    for name, secret in secrets.items():
        if not secret:
            continue
        for where, hay in haystacks.items():
            needle = secret.encode() if isinstance(hay, bytes) else secret
            if needle in hay:
                found.append(f"{name} in {where}")
    return found
