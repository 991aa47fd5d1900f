"""`warrant approvals standing|standing-list|revoke`: bounded standing approvals from the CLI.

You are the user you logged in as (`warrant login`); the request is pushed to your authenticator
like any approval, with its limits shown, and recorded once you approve it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auth.errors import AuthError
from auth.standing_approvals import (
    StandingApprovalError,
    StandingApprovals,
    open_standing_approvals,
    request_standing_approval,
)
from cli.approvals import approvals_app
from cli.command_errors import fail, run_or_fail
from cli.delegation import parse_expiry

T = TypeVar("T")
console = Console()


async def _me() -> tuple[str, str]:
    from auth.login import current_tokens

    tokens = await current_tokens()
    if not tokens.email:
        raise StandingApprovalError("your login carries no email")
    return tokens.subject, f"user:{tokens.email.lower()}"


def _run(work: Callable[[StandingApprovals, str, str], Awaitable[T]]) -> T:
    async def run() -> T:
        sub, fga_user = await _me()
        store = await asyncio.to_thread(open_standing_approvals)
        try:
            return await work(store, sub, fga_user)
        finally:
            await store.close()

    return run_or_fail(run, (StandingApprovalError, AuthError, ValueError))


def standing_command(
    tool: str = typer.Option(..., "--tool", help="The tool, e.g. create_public_gist."),
    max_uses: int = typer.Option(..., "--max", help="How many actions (1-100)."),
    within: str = typer.Option("30m", "--for", help="For how long: 30m, 2h (at most 24h)."),
    thread: str | None = typer.Option(None, "--thread", help="Only in this conversation."),
) -> None:
    """Approve up to N actions of one tool for a while, once (you approve on your authenticator)."""
    import time

    from auth.approvals import get_ciba_client
    from settings import get_settings

    try:
        until = parse_expiry(within)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    seconds = (until or time.time()) - time.time()

    async def work(store: StandingApprovals, sub: str, fga_user: str) -> Any:
        s = get_settings()
        return await request_standing_approval(
            await get_ciba_client(s),
            store,
            user_id=sub,
            fga_user=fga_user,
            tool_name=tool,
            max_uses=max_uses,
            seconds=seconds,
            thread_id=thread,
            audience=s.audience,
            requested_expiry=s.ciba_requested_expiry,
            on_pushed=lambda text: console.print(f"Approve on your authenticator: {text}"),
        )

    granted = _run(work)
    console.print(
        f"Standing approval [bold]{granted.id}[/bold]: up to {granted.max_uses} {tool} "
        f"until {granted.as_dict()['expires']}."
    )


def standing_list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Your standing approvals, with uses left."""
    found = _run(lambda store, sub, _u: store.list(sub))
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in found]))
        return
    table = Table("id", "tool", "used", "max", "expires (UTC)", "thread", "status")
    for s in found:
        row = s.as_dict()
        table.add_row(
            s.id,
            escape(s.tool_name),
            str(s.used),
            str(s.max_uses),
            row["expires"],
            escape(s.thread_id or "any"),
            s.status.value,
        )
    console.print(table)


def revoke_command(
    standing_id: str = typer.Argument(..., help="The standing approval id."),
) -> None:
    """Revoke a standing approval now: the agent's next action under it is refused."""
    gone = _run(lambda store, sub, _u: store.revoke(standing_id, sub))
    console.print(f"Revoked {gone.id} ({gone.used} of {gone.max_uses} used).")


def register(app: typer.Typer) -> None:
    if any(c.name == "standing" for c in approvals_app.registered_commands):
        return  # `approvals_app` is shared: register its standing commands once
    approvals_app.command("standing")(standing_command)
    approvals_app.command("standing-list")(standing_list_command)
    approvals_app.command("revoke")(revoke_command)
