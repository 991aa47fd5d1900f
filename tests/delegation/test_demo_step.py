"""The demo's `delegation` step on its own (it ingests the corpus when no earlier step did)."""

from __future__ import annotations

from devstack.demo.delegation import delegation_step
from devstack.demo.runner import run_demo
from devstack.demo.steps import login_step


async def test_delegation_step_passes_alone() -> None:
    report = await run_demo(steps=[("login", login_step), ("delegation", delegation_step)])
    by_name = {s.name: s for s in report.steps}
    assert by_name["delegation"].ok, by_name["delegation"].detail
    detail = by_name["delegation"].detail
    assert "then answered from it (240,000 EUR)" in detail
    assert "after she revoked, the next answer had none of it" in detail
    assert "created 2 public Gists without asking" in detail
    assert "hash chain verified" in detail
