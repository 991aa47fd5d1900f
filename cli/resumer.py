"""`warrant resumer`: wake threads waiting for an approval when the provider only polls (Auth0).

It reads the approvals ledger the server writes (the same `WARRANT_APPROVALS_DB`), and for each
request whose polling interval has elapsed it knocks on the server's own ping callback with that
request's notification token (the same `WARRANT_CIBA_NOTIFICATION_TOKEN` key, or the same client
secret). The server resumes the thread in-process; the `approval` node asks the provider. The
LangGraph server also runs this poller itself (`WARRANT_RESUMER_ENABLED`, on by default); run it
separately when the server's own poller is disabled, e.g. with several server replicas.
"""

from __future__ import annotations

import asyncio
import logging

import typer

DEFAULT_SERVER = "http://127.0.0.1:2024"


async def _run(server: str, tick: float, once: bool) -> int:
    from auth.approvals import close_all
    from graph.resumer import ApprovalPoller, CallbackResumer

    poller = ApprovalPoller(CallbackResumer(server), tick=tick)
    try:
        if once:
            return await poller.run_once()
        await poller.run()
        return poller.wakes
    finally:
        await close_all()


def register(app: typer.Typer) -> None:
    """Add `warrant resumer`."""

    @app.command("resumer")
    def resumer(
        server: str = typer.Option(
            DEFAULT_SERVER, "--server", help="The LangGraph server whose threads to wake."
        ),
        tick: float = typer.Option(1.0, "--tick", min=0.05, help="Seconds between ledger scans."),
        once: bool = typer.Option(False, "--once", help="Wake the due requests once and exit."),
    ) -> None:
        """Wake threads whose approval requests are due for a poll (poll-mode providers)."""
        from settings import get_settings

        logging.basicConfig(level=get_settings().log_level, format="%(levelname)s %(message)s")
        try:
            woken = asyncio.run(_run(server, tick, once))
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
        if once:
            typer.echo(f"woke {woken} thread(s) waiting for an approval")
