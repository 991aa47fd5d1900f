"""`warrant serve`: the production server, Aegra on PostgreSQL, configured only through settings.

One process per command; run several behind a load balancer, all with the same settings (same
`WARRANT_DATABASE_URL`, ledger and keys) and each its own `WARRANT_SERVE_PORT` (or host).
`aegra.json` is generated from `langgraph.json` (`deploy/aegra_config.py`) each start.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import typer

POSTGRES = ("postgresql://", "postgres://")


class ServeConfigError(Exception):
    """The settings do not describe a server that several processes can share."""


def server_environment(port: int | None = None, host: str | None = None) -> dict[str, str]:
    """The environment of one server process, from settings (raises `ServeConfigError`)."""
    from deploy.aegra_config import REPO, write_aegra_config
    from settings import get_settings

    s = get_settings()
    if not (s.database_url or "").startswith(POSTGRES):
        raise ServeConfigError(
            "WARRANT_DATABASE_URL must be a postgresql:// URL: the server keeps runs, threads "
            "and checkpoints there, shared by every server process."
        )
    ledger = s.approvals_db or s.database_url
    if not str(ledger).startswith(POSTGRES):
        raise ServeConfigError(
            "WARRANT_APPROVALS_DB must be a postgresql:// URL (or unset, to use "
            "WARRANT_DATABASE_URL): every server process must share one approvals ledger."
        )
    host = host or s.serve_host
    port = port or s.serve_port
    folder = s.path("serve")
    folder.mkdir(parents=True, exist_ok=True)
    # Several processes may start at once: write to a private file, then rename over.
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".json", delete=False) as handle:
        temporary = Path(handle.name)
    config = write_aegra_config(temporary)
    target = folder / "aegra.json"
    os.replace(config, target)
    env = dict(os.environ)
    env.update(
        {
            "AEGRA_CONFIG": str(target.resolve()),
            "DATABASE_URL": str(s.database_url),
            "SQLALCHEMY_POOL_SIZE": str(s.serve_db_pool_size),
            "LANGGRAPH_MAX_POOL_SIZE": str(s.serve_db_pool_size),
            "WARRANT_APPROVALS_DB": str(ledger),
            "WARRANT_SERVE_HOST": host,
            "WARRANT_SERVE_PORT": str(port),
            "WARRANT_SERVER_URL": s.server_url or f"http://{host}:{port}",
            "WARRANT_REPLICA_ID": s.replica_id or f"{host}:{port}",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        }
    )
    return env


def server_command(port: int | None = None, host: str | None = None) -> list[str]:
    """The command line of one server process (uvicorn serving Aegra's app)."""
    from settings import get_settings

    s = get_settings()
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "aegra_api.main:app",
        "--host",
        host or s.serve_host,
        "--port",
        str(port or s.serve_port),
        "--no-access-log",
        "--log-level",
        s.log_level.lower(),
    ]


def register(app: typer.Typer) -> None:
    """Add `warrant serve`."""

    @app.command("serve")
    def serve(
        port: int = typer.Option(None, "--port", help="Port (default WARRANT_SERVE_PORT)."),
        host: str = typer.Option(None, "--host", help="Host (default WARRANT_SERVE_HOST)."),
    ) -> None:
        """Serve the agent, its Auth and approval callback on Aegra + PostgreSQL (one process)."""
        try:
            env = server_environment(port, host)
        except ServeConfigError as exc:
            typer.echo(f"warrant serve: {exc}", err=True)
            raise typer.Exit(2) from None
        from deploy.schema import prepare_database

        try:
            prepare_database(env["DATABASE_URL"], env["WARRANT_APPROVALS_DB"])
        except Exception as exc:  # no server without its tables: say why, no stack trace
            typer.echo(f"warrant serve: cannot prepare the database: {exc}", err=True)
            raise typer.Exit(1) from None
        command = server_command(port, host)
        typer.echo(f"warrant serve: {env['WARRANT_SERVER_URL']} (Aegra on PostgreSQL)", err=True)
        # The server replaces this process, so signals sent to `warrant serve` reach it.
        os.execve(command[0], command, env)  # noqa: S606
