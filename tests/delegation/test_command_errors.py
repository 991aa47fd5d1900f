"""The CLI's shared ending for an expected error: red message on stderr, exit code, no traceback;
an unexpected error is not swallowed."""

from __future__ import annotations

import pytest
import typer

from cli.command_errors import fail, run_or_fail


class Expected(Exception):
    pass


def test_an_expected_error_exits_with_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    async def work() -> int:
        raise Expected("no login [yet]")

    with pytest.raises(typer.Exit) as exited:
        run_or_fail(work, (Expected,))
    assert exited.value.exit_code == 1
    assert exited.value.__suppress_context__  # `from None`: no traceback for a person
    assert "no login [yet]" in capsys.readouterr().err  # markup in the message is escaped


def test_work_that_succeeds_returns_its_value() -> None:
    async def work() -> int:
        return 7

    assert run_or_fail(work, (Expected,)) == 7


def test_an_unexpected_error_propagates() -> None:
    async def work() -> int:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_or_fail(work, (Expected,))


def test_fail_carries_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert fail("bad input", 2).exit_code == 2
    assert "bad input" in capsys.readouterr().err
