"""The offline demo (`warrant demo`): the whole scenario against a throwaway devstack.

`await run_demo()` returns a `DemoReport` whose `as_json()` is the shape `warrant demo --json`
prints: `{"ok": bool, "model": str, "steps": [{"name", "ok", "detail", "seconds"}]}`.
"""

from devstack.demo.report import DemoReport, StepResult
from devstack.demo.runner import default_steps, run_demo, run_step
from devstack.demo.world import DemoError, DemoWorld

__all__ = [
    "DemoError",
    "DemoReport",
    "DemoWorld",
    "StepResult",
    "default_steps",
    "run_demo",
    "run_step",
]
