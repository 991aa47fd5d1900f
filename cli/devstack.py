"""`warrant devstack`: serve the local identity provider, GitHub API and OpenFGA API on loopback."""

from __future__ import annotations

import os
import shlex

import typer
from rich.console import Console

from settings import Settings, get_settings

console = Console()
errors = Console(stderr=True)


def _env_lines(env: dict[str, str]) -> list[str]:
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


def _user_lines(settings: Settings) -> list[str]:
    """Who can log in. The seeded passwords are printed only while they are the public defaults
    (they are in the source anyway); a password you set is named by its variable only."""
    lines = ["users (the same login at the local GitHub's consent page):"]
    for who in ("alice", "bob"):
        field = f"{who}_password"
        value = getattr(settings, field).get_secret_value()
        default = Settings.model_fields[field].default.get_secret_value()
        shown = value if value == default else f"your WARRANT_{field.upper()}"
        lines.append(f"  {who}@example.com  password {shown}   (GitHub login: {who})")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("devstack")
    def devstack(
        ephemeral: bool = typer.Option(
            False, "--ephemeral", help="Use free ports chosen by the system instead of settings."
        ),
        env_file: str | None = typer.Option(
            None, "--env-file", help="Also write the agent's WARRANT_* settings to this file."
        ),
        log_level: str = typer.Option("warning", help="uvicorn log level."),
    ) -> None:
        """Serve the devstack on 127.0.0.1 until Ctrl-C; print the agent's WARRANT_* settings."""
        from devstack.server import DevStack

        settings = get_settings()
        stack = DevStack(settings, ephemeral=ephemeral, log_level=log_level)

        def started(running: DevStack) -> None:
            lines = _env_lines(running.env())
            console.print(f"[bold]identity provider[/bold]  {running.issuer}", highlight=False)
            if running.github_url:
                console.print(f"[bold]GitHub API[/bold]         {running.github_url}")
            if running.fga_url:
                console.print(f"[bold]OpenFGA API[/bold]        {running.fga_url}")
            console.print(f"device activation  {running.issuer}activate", highlight=False)
            console.print(
                f"approvals          {running.issuer}approvals   (stands in for the push "
                "authenticator)",
                highlight=False,
            )
            for line in _user_lines(settings):
                console.print(line, highlight=False)
            console.print("\n# settings for the agent (eval in your shell, or a .env file):")
            for line in lines:
                print(line, flush=True)
            if env_file:
                # the agent's client secret is in it: readable by the user only
                fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write("\n".join(line.removeprefix("export ") for line in lines) + "\n")
                console.print(f"# written to {env_file}")
            if running.fga_url:
                console.print(
                    "# the agent uses the embedded FGA engine unless WARRANT_FGA_BACKEND=openfga"
                )
            console.print("\nPress Ctrl-C to stop.")

        try:
            stack.serve_forever(on_started=started)
        except OSError as exc:
            errors.print(
                f"[red]error:[/red] cannot listen on 127.0.0.1 ({exc.strerror or exc}); "
                "is another devstack running? Try --ephemeral.",
                highlight=False,
            )
            raise typer.Exit(1) from None
