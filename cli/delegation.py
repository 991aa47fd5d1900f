"""`warrant delegate`, `warrant delegations`, `warrant revoke`: what the agent may do for you.

You are the user you logged in as (`warrant login`). `--user EMAIL` is for the operator of the
store (as `warrant fga write` is): it is recorded as such in the audit trail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auth.delegation import Delegation, DelegationError, delegations, grant, revoke
from auth.errors import AuthError
from auth.fga.errors import FGAError
from cli.command_errors import err_console, fail, run_or_fail
from settings import get_settings
from vectorstore.principals import PrincipalError, fga_user

T = TypeVar("T")
console = Console()

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_expiry(text: str | None, now: float | None = None) -> float | None:
    """`30m`, `2h`, `7d`, or an ISO 8601 time with a zone; None for no expiry."""
    if text is None:
        return None
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip().lower())
    if match:
        amount = int(match.group(1)) * _UNITS[match.group(2)]
        if amount <= 0:
            raise DelegationError("the expiry must be in the future")
        return now + amount
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DelegationError(
            f"cannot read the expiry {text!r}: use 30m, 2h, 7d or an ISO time with a zone"
        ) from None
    if when.tzinfo is None:
        raise DelegationError("an ISO expiry needs a time zone (for example 2026-12-31T18:00Z)")
    if when.timestamp() <= now:
        raise DelegationError("the expiry is in the past")
    return when.timestamp()


async def _who(user: str | None) -> tuple[str, str | None]:
    """The FGA user, and the provider's `sub` when it comes from your login."""
    if user is not None:
        return fga_user(user), None
    from auth.login import current_tokens

    tokens = await current_tokens()
    if not tokens.email:
        raise DelegationError("your login carries no email; pass --user EMAIL as the operator")
    return fga_user(tokens.email), tokens.subject


def _run(work: Callable[[Any, str, str | None], Awaitable[T]], user: str | None) -> T:
    from auth.fga.factory import make_fga_client
    from vectorstore.access_model import ensure_document_model

    async def run() -> T:
        who, sub = await _who(user)
        fga = await asyncio.to_thread(make_fga_client, get_settings())
        try:
            await ensure_document_model(fga)
            return await work(fga, who, sub)
        finally:
            await fga.close()

    return run_or_fail(run, (DelegationError, PrincipalError, FGAError, AuthError, ValueError))


def _table(items: list[Delegation]) -> None:
    table = Table("agent", "scope", "expires (UTC)")
    for d in items:
        row = d.as_dict()
        table.add_row(escape(d.agent_id), escape(row["scope"]), row["expires_at"] or "never")
    console.print(table)


def delegate_command(
    agent: str = typer.Option(None, "--agent", help="The agent id (default: this agent)."),
    documents: list[str] = typer.Option([], "--documents", "--document", help="A document id."),
    folders: list[str] = typer.Option([], "--folder", help="A folder id (and its subfolders)."),
    expires: str | None = typer.Option(None, "--expires", help="30m, 2h, 7d or an ISO time."),
    user: str | None = typer.Option(None, "--user", help="Operator: delegate for this email."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Let the agent act for you on documents or folders (none named: everything you can see)."""
    agent_id = agent or get_settings().agent_client_id
    try:
        until = parse_expiry(expires)
    except DelegationError as exc:
        raise fail(str(exc), 2) from None
    done = _run(
        lambda fga, who, sub: grant(
            fga,
            who,
            agent_id,
            documents=documents,
            folders=folders,
            expires_at=until,
            by="operator" if user else "user",
            sub=sub,
        ),
        user,
    )
    if as_json:
        typer.echo(json.dumps([d.as_dict() for d in done]))
        return
    console.print(f"Delegated to [bold]{escape(agent_id)}[/bold]:")
    _table(done)
    if not get_settings().delegation_enforced:
        err_console.print(
            "Note: this deployment does not enforce delegation (WARRANT_DELEGATION_ENFORCED is "
            "off): the agent acts with your full authority until it is turned on."
        )


def delegations_command(
    agent: str = typer.Option(None, "--agent", help="The agent id (default: this agent)."),
    user: str | None = typer.Option(None, "--user", help="Operator: list for this email."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """What you delegated to the agent."""
    agent_id = agent or get_settings().agent_client_id
    found = _run(lambda fga, who, _sub: delegations(fga, who, agent_id), user)
    if as_json:
        typer.echo(json.dumps([d.as_dict() for d in found]))
        return
    if not found:
        console.print(f"Nothing is delegated to {escape(agent_id)}.")
        return
    _table(found)


def revoke_command(
    agent: str = typer.Option(None, "--agent", help="The agent id (default: this agent)."),
    documents: list[str] = typer.Option([], "--documents", "--document", help="A document id."),
    folders: list[str] = typer.Option([], "--folder", help="A folder id."),
    everything: bool = typer.Option(False, "--all", help="Every delegation to this agent."),
    user: str | None = typer.Option(None, "--user", help="Operator: revoke for this email."),
) -> None:
    """Take back a delegation; the agent's next check already says no."""
    agent_id = agent or get_settings().agent_client_id
    gone = _run(
        lambda fga, who, sub: revoke(
            fga,
            who,
            agent_id,
            documents=documents,
            folders=folders,
            everything=everything,
            by="operator" if user else "user",
            sub=sub,
        ),
        user,
    )
    console.print(f"Revoked {len(gone)} delegation(s) to {escape(agent_id)}.")


def register(app: typer.Typer) -> None:
    app.command("delegate")(delegate_command)
    app.command("delegations")(delegations_command)
    app.command("revoke")(revoke_command)
