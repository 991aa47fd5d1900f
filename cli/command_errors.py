"""How a CLI command ends on an expected error: the message in red on stderr, a non-zero exit.

The delegation and standing-approval commands each run one piece of async work and turn the
errors a person can act on (bad input, no login, a store that refused) into that exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

T = TypeVar("T")
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error; the exit to raise (`raise fail(...) from None`)."""
    err_console.print(f"[red]{escape(message)}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def run_or_fail(work: Callable[[], Awaitable[T]], expected: tuple[type[Exception], ...]) -> T:
    """Run `work` to the end; an `expected` error becomes `fail(its message)`, anything else
    propagates (a bug shows its traceback)."""
    try:
        return asyncio.run(work())
    except expected as exc:
        raise fail(str(exc)) from None
