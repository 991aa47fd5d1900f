"""What a demo run reports: one result per step, and the JSON shape outside checks rely on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

REDACTED = "[redacted]"


@dataclass(frozen=True)
class StepResult:
    """One demo step: whether it proved its point, and a line saying what it saw."""

    name: str
    ok: bool
    detail: str
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 2)
        return out


@dataclass
class DemoReport:
    """The whole run: `ok` only when every step passed (and there was at least one)."""

    model: str
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def as_json(self) -> dict[str, Any]:
        """`{"ok": bool, "model": str, "steps": [{"name", "ok", "detail", "seconds"}]}`."""
        return {
            "ok": self.ok,
            "model": self.model,
            "steps": [step.as_json() for step in self.steps],
        }


def scrub(text: str, secrets: Iterable[str]) -> tuple[str, bool]:
    """`text` with every secret replaced, and whether one was found (a leak fails the step)."""
    leaked = False
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
            leaked = True
    return text, leaked
