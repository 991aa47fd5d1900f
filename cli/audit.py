"""`warrant audit`: read the audit trail and verify its hash chain (no command edits it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auth.audit import AuditError, AuditEvent, AuditLog, AuditRecord, audit_location

audit_app = typer.Typer(
    invoke_without_command=True,
    help="Read the audit trail of authorization decisions; `verify` checks it was not edited.",
)
console = Console()
err_console = Console(stderr=True)


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


async def _read(user: str | None, event: AuditEvent | None, limit: int | None) -> list[AuditRecord]:
    log = AuditLog(audit_location())
    try:
        return await log.records(sub=user, event=event, limit=limit)
    finally:
        await log.close()


@audit_app.callback()
def audit_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    user: str | None = typer.Option(None, "--user", help="Only records for this user `sub`."),
    event: str | None = typer.Option(None, "--event", help="Only this event (e.g. login)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="The newest N records."),
) -> None:
    """Print the audit trail, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        kind = AuditEvent(event) if event else None
    except ValueError:
        choices = ", ".join(e.value for e in AuditEvent)
        err_console.print(
            f"[red]Unknown event {escape(event or '')!r}; use one of {choices}.[/red]"
        )
        raise typer.Exit(code=2) from None
    try:
        records = asyncio.run(_read(user, kind, limit))
    except AuditError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(code=1) from None
    if as_json:
        for record in records:
            typer.echo(json.dumps(record.as_dict(), sort_keys=True))
        return
    if not records:
        console.print("The audit trail is empty.")
        return
    table = Table("#", "when (UTC)", "event", "outcome", "user", "agent", "what", "why")
    for r in records:
        what = " ".join(x for x in (r.tool, r.object) if x) or "-"
        table.add_row(
            str(r.seq),
            _when(r.at),
            r.event.value,
            r.outcome,
            escape(r.sub or "-"),
            escape(r.act or "-"),
            escape(what),
            escape(r.reason or "-"),
        )
    console.print(table)


@audit_app.command("verify")
def verify_command(
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="The head hash you anchored earlier (catches cut-off records)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Recompute the hash chain; exit 1 if any record was changed, removed or reordered."""

    async def run() -> object:
        log = AuditLog(audit_location())
        try:
            return await log.verify(expect_head=expect_head)
        finally:
            await log.close()

    result = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps(result.__dict__, sort_keys=True))
    elif result.ok:
        console.print(f"OK: {result.records} record(s), head {result.head_hash}")
    else:
        err_console.print(f"[red]The audit trail was tampered with: {escape(result.problem)}[/red]")
    if not result.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
