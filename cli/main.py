"""The `warrant` command: a thin typer layer over the rest of the project.

Each command group lives in its own module with a `register(app)` function.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Warrant: a LangGraph agent that is authorized, not just authenticated.",
)

# Order is the order of `warrant --help`.
_COMMAND_MODULES = (
    "demo",
    "chat",
    "login",
    "devstack",
    "approvals",
    "resumer",
    "serve",
    "fga",
    "ingest",
    "delegation",
    "standing_approvals",
    "audit",
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"cli.{_name}")
    except ModuleNotFoundError as exc:  # a command group not written yet
        if exc.name != f"cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
