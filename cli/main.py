"""The `warrant` command: a thin typer layer over the rest of the project.

Each command group lives in its own module with a `register(app)` function. Modules are
imported only when one of their commands runs (or its own `--help` is asked for): `warrant
--help` and `warrant fga ...` must not pay for LangGraph, LangChain or Chroma, which only
some commands use. `--help` lists the commands from the table below, whose one-line helps a
test keeps equal to the commands' own.
"""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer
from typer.core import TyperGroup

# command -> (module under cli/, one-line help); the order is the order of `warrant --help`
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "demo",
        "Run the offline demo end to end: login, GitHub via Token Vault, documents, approvals.",
    ),
    "dev": (
        "demo",
        "Run the devstack (fixed ports) and `langgraph dev`, set up for each other, until Ctrl-C.",
    ),
    "chat": (
        "chat",
        "Chat with the agent as the signed-in user (SQLite checkpoints; interrupts are shown).",
    ),
    "login": (
        "login",
        "Log in at the identity provider; the tokens are kept in a file only you can read.",
    ),
    "logout": (
        "login",
        "Revoke the CLI's refresh token at the provider and delete the stored tokens.",
    ),
    "whoami": (
        "login",
        "Show who the CLI is logged in as (the access token is validated, renewed if needed).",
    ),
    "devstack": (
        "devstack",
        "Serve the devstack on 127.0.0.1 until Ctrl-C; print the agent's WARRANT_* settings.",
    ),
    "approvals": ("approvals", "Answer approval requests (CIBA) and read the approvals log."),
    "resumer": (
        "resumer",
        "Wake threads whose approval requests are due for a poll (poll-mode providers).",
    ),
    "serve": (
        "serve",
        "Serve the agent, its Auth and approval callback on Aegra + PostgreSQL (one process).",
    ),
    "fga": (
        "fga",
        "OpenFGA models, store tests and tuples (embedded engine or an OpenFGA server).",
    ),
    "ingest": (
        "ingest",
        "Ingest documents: chunks into Chroma, access tuples into FGA (idempotent).",
    ),
    "share": ("ingest", "Let more people view a document."),
    "unshare": ("ingest", "Withdraw viewer access to a document (the owner keeps it)."),
    "forget": ("ingest", "Delete a document: its chunks and its access tuples."),
    "documents": ("ingest", "List the ingested documents."),
    "delegate": (
        "delegation",
        "Let the agent act for you on documents or folders (none named: everything you can see).",
    ),
    "delegations": ("delegation", "What you delegated to the agent."),
    "revoke": ("delegation", "Take back a delegation; the agent's next check already says no."),
    "audit": (
        "audit",
        "Read the audit trail of authorization decisions; `verify` checks it was not edited.",
    ),
}

_loaded: dict[str, click.Group | None] = {}


def _module_group(module: str) -> click.Group | None:
    """The click group holding every command `cli.<module>` registers (imported on first use)."""
    if module not in _loaded:
        try:
            mod = importlib.import_module(f"cli.{module}")
        except ModuleNotFoundError as exc:  # a command group not written yet
            if exc.name != f"cli.{module}":
                raise
            _loaded[module] = None
            return None
        sub = typer.Typer(add_completion=False)
        sub.callback()(lambda: None)  # always a group, even for a single command
        mod.register(sub)
        _loaded[module] = typer.main.get_group(sub)
    return _loaded[module]


class LazyCommands(TyperGroup):
    """A group whose commands are imported when used; `--help` reads the table instead."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        group = _module_group(entry[0])
        return None if group is None else group.get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: Any) -> None:
        rows = [(name, help_) for name, (_module, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=LazyCommands,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="Warrant: a LangGraph agent that is authorized, not just authenticated.",
)


@app.callback()
def _root() -> None:
    """Warrant: a LangGraph agent that is authorized, not just authenticated."""


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
