"""`warrant approvals`: answer CIBA approval requests from the terminal, and read the audit trail.

`list`, `approve ID` and `deny ID` talk to the devstack provider's approvals API with a credential
of its own that your CLI login (`warrant login`) obtains, as the push authenticator would; with
Auth0, answer on your phone (Guardian) instead. `log` prints the agent's approvals ledger (every
request and its outcome).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auth.approvals_ledger import (
    LEDGER_FILE,
    ApprovalRecord,
    ApprovalStatus,
    ledger_location,
    open_ledger,
)
from auth.errors import AuthError, LoginRequired, ProviderUnavailable
from auth.login import TokenFile, current_tokens
from cli.errors import explain
from settings import get_settings

approvals_app = typer.Typer(
    no_args_is_help=True,
    help="Answer approval requests (CIBA) and read the approvals log.",
)
console = Console()
err_console = Console(stderr=True)
_SERVICE = "The identity provider"


class ApprovalsAPIError(Exception):
    """The provider answered the approvals API with an error (the message is for people)."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]{escape(message)}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


async def _authenticator_token(http: httpx.AsyncClient) -> str:
    """A credential of the provider's approvals API, for the refresh token only this CLI holds.

    The user's access token is not accepted there: the agent server receives that one.
    """
    settings = get_settings()
    tokens = await current_tokens()
    if not tokens.refresh_token:
        raise LoginRequired("Your login has no refresh token; run `warrant login` again.")
    response = await http.post(
        settings.issuer_url + "api/approvals/authenticator",
        data={"client_id": tokens.client_id, "refresh_token": tokens.refresh_token},
        headers={"Accept": "application/json"},
    )
    try:
        data = response.json()
    except ValueError:
        data = None
    token = data.get("authenticator_token") if isinstance(data, dict) else None
    if response.is_success and isinstance(token, str) and token:
        return token
    if response.status_code >= 500:
        raise ProviderUnavailable(_SERVICE, f"HTTP {response.status_code}")
    if response.status_code == 404:
        raise ApprovalsAPIError(
            f"{settings.issuer_url} has no approvals API (the devstack provider has one); "
            "answer the request on your authenticator instead."
        )
    raise LoginRequired(
        "The identity provider did not accept your login; run `warrant login` again."
    )


async def _call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One request to the provider's approvals API with an authenticator credential."""
    settings = get_settings()
    url = settings.issuer_url + path
    try:
        async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as http:
            token = await _authenticator_token(http)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            response = await http.request(method, url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise ProviderUnavailable(
            _SERVICE, f"{settings.issuer_url} did not answer in time"
        ) from None
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(
            _SERVICE, f"{settings.issuer_url} could not be reached: {type(exc).__name__}"
        ) from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 500:
        raise ProviderUnavailable(_SERVICE, f"HTTP {response.status_code}")
    if response.is_success and data is not None:
        return data
    error = data.get("error") if isinstance(data, dict) else None
    description = data.get("error_description") if isinstance(data, dict) else None
    if response.status_code == 401:
        raise LoginRequired(
            "The identity provider did not accept your login; run `warrant login` again."
        )
    if response.status_code == 404 and error is None:
        raise ApprovalsAPIError(
            f"{settings.issuer_url} has no approvals API (the devstack provider has one); "
            "answer the request on your authenticator instead."
        )
    raise ApprovalsAPIError(str(description or error or f"HTTP {response.status_code}"))


def _run(coro: Any) -> Any:
    """Run one API call; every failure becomes a clear message and exit code 1."""
    try:
        return asyncio.run(coro)
    except (AuthError, ApprovalsAPIError) as exc:
        raise _fail(explain(exc)) from None


def _time_left(expires_at: float) -> str:
    seconds = int(expires_at - time.time())
    if seconds <= 0:
        return "expired"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def _tool(details: Any) -> str:
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and item.get("tool"):
                digest = str(item.get("action_digest", ""))[:12]
                return f"{item['tool']} {digest}".strip()
    return ""


def _access(record: dict[str, Any]) -> str:
    scopes = [s for s in str(record.get("scope", "")).split() if s != "openid"]
    return f"{' '.join(scopes)} ({record.get('audience', '')})"


@approvals_app.command("list")
def list_command(
    show_all: bool = typer.Option(False, "--all", help="Also show answered and expired ones."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Your approval requests waiting for an answer (as your authenticator would show them)."""
    path = "api/approvals" if show_all else "api/approvals?status=pending"
    records = _run(_call("GET", path))
    if not isinstance(records, list):
        raise _fail(f"{_SERVICE} answered the approvals list with nonsense.")
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    if not records:
        console.print("No approval requests are waiting for you.")
        return
    table = Table(title="Approval requests")
    # The ID is what the user copies into `approve ID`: never wrapped, whatever the width.
    widest = max(len(str(record.get("id", ""))) for record in records)
    table.add_column("ID", no_wrap=True, min_width=widest)
    for column in ("Request", "Client", "Tool", "Access", "Status"):
        table.add_column(column, overflow="fold")
    for record in records:
        status = str(record.get("status", ""))
        if status == "pending":
            status = f"pending, {_time_left(float(record.get('expires_at', 0)))} left"
        table.add_row(
            str(record.get("id", "")),
            str(record.get("binding_message", "")),
            str(record.get("client_name", "")),
            _tool(record.get("authorization_details")),
            _access(record),
            status,
        )
    console.print(table)
    if not show_all:
        console.print("Answer with `warrant approvals approve ID` or `warrant approvals deny ID`.")


def _decide(approval_id: str, decision: str) -> None:
    record = _run(_call("POST", f"api/approvals/{approval_id}", {"decision": decision}))
    if not isinstance(record, dict):
        raise _fail(f"{_SERVICE} answered with nonsense.")
    verb = "Approved" if decision == "approve" else "Denied"
    console.print(
        f"{verb} {record.get('id', approval_id)}: “{record.get('binding_message', '')}” "
        f"from {record.get('client_name', '')}.",
        highlight=False,
        soft_wrap=True,
    )


@approvals_app.command("approve")
def approve_command(approval_id: str = typer.Argument(..., help="The request's ID.")) -> None:
    """Approve one of your requests (the agent then runs that one action, once)."""
    _decide(approval_id, "approve")


@approvals_app.command("deny")
def deny_command(approval_id: str = typer.Argument(..., help="The request's ID.")) -> None:
    """Deny one of your requests (the agent does nothing and tells you so)."""
    _decide(approval_id, "deny")


def _when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


async def _history(
    user_id: str | None, limit: int, status: ApprovalStatus | None
) -> list[ApprovalRecord]:
    ledger = open_ledger(get_settings())
    try:
        return await ledger.history(user_id=user_id, limit=limit, status=status)
    finally:
        await ledger.close()


@approvals_app.command("log")
def log_command(
    show_all: bool = typer.Option(False, "--all", help="Every user's approvals, not only yours."),
    user: str | None = typer.Option(None, "--user", help="One user's approvals (subject)."),
    status: ApprovalStatus | None = typer.Option(None, "--status", help="Only this status."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The agent's approvals ledger, newest first: who was asked what, and what happened."""
    settings = get_settings()
    if user is None and not show_all:
        try:
            tokens = TokenFile().load()
        except LoginRequired as exc:
            raise _fail(str(exc)) from None
        if tokens is None:
            raise _fail(
                "You are not logged in; run `warrant login` to see your approvals, "
                "or pass --all to see everyone's."
            )
        user = tokens.subject
    location = ledger_location(settings)
    is_file = not location.startswith(("postgresql://", "postgres://"))
    if is_file and settings.approvals_db is None and not settings.path(LEDGER_FILE).exists():
        records: list[ApprovalRecord] = []  # nothing recorded yet: do not create the file
    else:
        try:
            records = asyncio.run(_history(None if show_all else user, limit, status))
        except Exception as exc:  # a locked, corrupt or unreachable database
            raise _fail(f"The approvals ledger could not be read: {type(exc).__name__}") from None
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in records], indent=2, default=str))
        return
    if not records:
        console.print("No approvals recorded.")
        return
    table = Table(title="Approvals log")
    for column in ("Created (UTC)", "User", "Tool", "Request", "Status", "Thread", "Outcome"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            _when(record.created_at),
            record.user_id,
            record.tool_name,
            record.binding_message,
            record.status.value,
            record.thread_id,
            record.outcome or "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    # Standing approvals are `approvals` subcommands kept in their own module.
    from cli import standing_approvals

    standing_approvals.register(app)
    app.add_typer(approvals_app, name="approvals")
