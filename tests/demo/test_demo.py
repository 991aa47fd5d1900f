"""`warrant demo` in-process: every step passes, the JSON shape, failures reported, no token out."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import devstack.demo.runner as runner
from cli.main import app
from devstack.demo import DemoError, DemoWorld, run_demo
from devstack.demo.steps import login_step
from tests.demo.conftest import STEPS, one_json_object, passing_report

IN_PROCESS_STEPS = [*STEPS, "delegation"]


def test_demo_json_every_step_passes(seen_tokens) -> None:
    result = CliRunner().invoke(app, ["demo", "--json"])
    details = passing_report(result, IN_PROCESS_STEPS, seen_tokens)
    # the steps prove what they claim, in words a person can check
    assert "alice -> alice@example.com" in details["login"]
    assert "exactly what the local GitHub API answers" in details["github_search"]
    assert "240,000 EUR" in details["documents"]
    assert "exactly one public Gist" in details["gist_approval"]
    assert "the third paused with approval_pending" in details["delegation"]


def test_human_output_names_the_model_and_marks_each_step(monkeypatch) -> None:
    monkeypatch.setattr(runner, "default_steps", lambda: [("login", login_step)])
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "✓ login" in result.stdout and "alice@example.com" in result.stdout
    assert "model offline (the offline model" in result.stdout


async def _broken(world: DemoWorld) -> str:
    raise RuntimeError("the step's own bug")


async def _refuses(world: DemoWorld) -> str:
    raise DemoError("what this step expected did not happen")


def test_a_failing_step_fails_the_run_but_not_the_others(monkeypatch) -> None:
    steps = [("broken", _broken), ("login", login_step), ("refuses", _refuses)]
    monkeypatch.setattr(runner, "default_steps", lambda: steps)
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 1
    report = one_json_object(result.stdout)
    assert report["ok"] is False
    by_name = {s["name"]: s for s in report["steps"]}
    assert by_name["broken"]["ok"] is False
    assert "RuntimeError: the step's own bug" in by_name["broken"]["detail"]
    assert by_name["login"]["ok"] is True  # ran after the broken one, and passed
    assert by_name["refuses"] == {
        **by_name["refuses"],
        "ok": False,
        "detail": "what this step expected did not happen",
    }

    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 1
    assert "✗ broken" in result.stdout and "✓ login" in result.stdout
    assert "failed: 1/3 steps" in result.stdout


async def test_a_token_in_a_detail_is_redacted_and_a_slow_step_times_out() -> None:
    leaked: list[str] = []

    async def leaky(world: DemoWorld) -> str:
        token = (await world.tokens("bob")).access_token
        leaked.append(token)
        return f"bob's token is {token}"

    async def slow(world: DemoWorld) -> str:
        import asyncio

        await asyncio.sleep(5)
        return "never"

    report = await run_demo(steps=[("leaky", leaky)])
    [leaky_result] = report.steps
    assert leaked and leaked[0] not in json.dumps(report.as_json())
    assert leaky_result.ok is False and "[redacted]" in leaky_result.detail
    assert report.ok is False

    report = await run_demo(steps=[("slow", slow)], step_timeout=0.2)
    [slow_result] = report.steps
    assert slow_result.ok is False and "did not finish within" in slow_result.detail


async def test_the_demo_leaves_nothing_behind(tmp_path, monkeypatch) -> None:
    import tempfile

    from settings import get_settings

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = get_settings()
    places: list[str] = []

    async def where(world: DemoWorld) -> str:
        places.append(str(world.settings.data_dir))
        places.append(str(world.stack.settings.data_dir))
        assert get_settings().issuer == world.stack.issuer
        return "here"

    report = await run_demo(steps=[("where", where)])
    assert report.ok
    assert all(p.startswith(str(tmp_path)) for p in places)
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone
    assert get_settings() is before  # settings restored


def test_a_devstack_that_cannot_start_or_a_crash_is_still_one_report(monkeypatch) -> None:
    from devstack.server import DevStack

    def refuse(self: DevStack, timeout: float = 15.0) -> DevStack:
        raise RuntimeError("the devstack failed to start: port in use")

    monkeypatch.setattr(DevStack, "start", refuse)
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 1
    report = one_json_object(result.stdout)
    assert report["ok"] is False
    assert [(s["name"], s["ok"]) for s in report["steps"]] == [("devstack", False)]
    assert "port in use" in report["steps"][0]["detail"]

    async def crash(**kwargs: object) -> None:
        raise ValueError("a bug outside the steps")

    monkeypatch.setattr("devstack.demo.run_demo", crash)
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.stdout
    report = one_json_object(result.stdout)
    assert report["steps"][0]["name"] == "demo" and "ValueError" in report["steps"][0]["detail"]
