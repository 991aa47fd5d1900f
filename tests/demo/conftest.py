"""What the demo's tests share: the tokens the demo learned, and reading its JSON report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.demo import DemoWorld

STEPS = ["login", "github_search", "documents", "gist_approval"]  # also `--server`'s steps


@pytest.fixture
def seen_tokens(monkeypatch) -> list[str]:
    """Every token the demo learns (logins, GitHub), to look for in its output afterwards."""
    seen: list[str] = []
    remember = DemoWorld.remember

    def spy(self: DemoWorld, *secrets: str | None) -> None:
        seen.extend(s for s in secrets if s)
        remember(self, *secrets)

    monkeypatch.setattr(DemoWorld, "remember", spy)
    return seen


def one_json_object(stdout: str) -> dict:
    text = stdout.strip()
    assert text.startswith("{") and text.count("\n") == 0, stdout[:500]
    return json.loads(text)


def passing_report(result: Any, steps: list[str], seen_tokens: list[str]) -> dict[str, str]:
    """`warrant demo --json`'s report in `result` has its shape, names `steps` in order, all
    passed, and no token learned appears in any output; each step's detail by name."""
    report = one_json_object(result.stdout)
    assert set(report) == {"ok", "model", "steps"}
    assert report["model"] == "offline"
    assert [step["name"] for step in report["steps"]] == steps
    for step in report["steps"]:
        assert set(step) == {"name", "ok", "detail", "seconds"}
        assert isinstance(step["detail"], str) and step["detail"]
        assert isinstance(step["seconds"], (int, float)) and step["seconds"] >= 0
    failed = {s["name"]: s["detail"] for s in report["steps"] if not s["ok"]}
    assert not failed, failed
    assert report["ok"] is True and result.exit_code == 0
    # alice's and bob's access, refresh and ID tokens and the GitHub token: none in any output
    assert len(seen_tokens) >= 7
    for token in seen_tokens:
        assert token not in result.stdout and token not in result.stderr
    return {s["name"]: s["detail"] for s in report["steps"]}
