"""`warrant login`, `warrant logout`, `warrant whoami`: the CLI's own sign-in at the provider."""

from __future__ import annotations

import asyncio
import datetime as dt
import webbrowser

import typer
from rich.console import Console
from rich.markup import escape

from auth.audit import AuditEvent, note_sync
from auth.errors import AuthError
from auth.login import (
    DeviceCode,
    LoginClient,
    TokenFile,
    current_tokens,
    login_with_browser,
    login_with_device,
    logout,
)
from cli.errors import explain
from settings import get_settings

console = Console()
err_console = Console(stderr=True)


def _fail(exc: AuthError) -> typer.Exit:
    err_console.print(f"[red]{escape(explain(exc))}[/red]", highlight=False)
    return typer.Exit(code=1)


def _show_device_code(code: DeviceCode) -> None:
    console.print(f"To log in, open [bold]{code.verification_uri}[/bold]")
    console.print(f"and enter the code [bold]{code.user_code}[/bold]")
    if code.verification_uri_complete:
        console.print(f"(or open {code.verification_uri_complete})")
    console.print(f"Waiting for approval (the code expires in {int(code.expires_in)} s)...")


def _open_browser(url: str) -> None:
    console.print("Opening your browser to log in. If it does not open, visit:")
    console.print(url, soft_wrap=True)
    webbrowser.open(url)


def login_command(
    device: bool = typer.Option(
        False, "--device", help="Device flow: enter a code on any browser (default)."
    ),
    browser: bool = typer.Option(
        False, "--browser", help="Open a browser here (authorization code + PKCE, loopback)."
    ),
) -> None:
    """Log in at the identity provider; the tokens are kept in a file only you can read."""
    if device and browser:
        err_console.print("[red]Choose one of --device and --browser.[/red]")
        raise typer.Exit(code=2)
    try:
        if browser:
            tokens = asyncio.run(login_with_browser(_open_browser))
        else:
            tokens = asyncio.run(login_with_device(_show_device_code))
    except AuthError as exc:
        note_sync(AuditEvent.LOGIN, "refused", reason=type(exc).__name__)
        raise _fail(exc) from None
    note_sync(
        AuditEvent.LOGIN, "allowed", sub=tokens.subject, reason="browser" if browser else "device"
    )
    console.print(f"Logged in as [bold]{tokens.email or tokens.subject}[/bold].")
    console.print(f"Tokens saved to {TokenFile().path} (readable only by you).")


def logout_command() -> None:
    """Revoke the CLI's refresh token at the provider and delete the stored tokens."""
    result = asyncio.run(logout())
    if not result.removed:
        console.print("You were not logged in.")
        return
    if result.revoked:
        console.print("Logged out: the refresh token was revoked and the stored tokens deleted.")
    else:
        console.print("Logged out: the stored tokens were deleted.")
        if result.detail:
            err_console.print(f"[yellow]The provider did not revoke them: {result.detail}[/yellow]")


def whoami_command() -> None:
    """Show who the CLI is logged in as (the access token is validated, renewed if needed)."""
    try:
        tokens = asyncio.run(current_tokens())
        claims = asyncio.run(LoginClient(tokens.issuer).validator.validate(tokens.access_token))
    except AuthError as exc:
        raise _fail(exc) from None
    expires = dt.datetime.fromtimestamp(float(claims["exp"]), tz=dt.UTC)
    console.print(f"user:     {tokens.email or '(no email)'}")
    console.print(f"subject:  {claims['sub']}")
    console.print(f"issuer:   {claims['iss']}")
    console.print(f"audience: {get_settings().audience}")
    console.print(f"scopes:   {claims.get('scope', '')}")
    console.print(f"expires:  {expires.isoformat(timespec='seconds')}")


def register(app: typer.Typer) -> None:
    app.command("login")(login_command)
    app.command("logout")(logout_command)
    app.command("whoami")(whoami_command)
