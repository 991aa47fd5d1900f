"""`warrant resumer --once`: reads the ledger's due requests and knocks on the server's callback
with each request's own notification token; requests not yet due are left alone."""

from __future__ import annotations

import asyncio
import time

from starlette.applications import Starlette
from typer.testing import CliRunner

from auth.approvals import close_all, get_ledger
from auth.approvals_ledger import ApprovalRecord
from cli.main import app
from graph.callbacks import routes
from graph.resumer import ResumeResult, set_resumer
from settings import get_settings
from tests.approvals.pending import pending_approval
from tests.token_vault.helpers import serve


class Recorder:
    def __init__(self) -> None:
        self.woken: list[str] = []

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        self.woken.append(record.auth_req_id or "")
        return ResumeResult.RESUMED


async def _seed() -> None:
    ledger = await get_ledger()
    for name, interval in (("due", 0.0), ("later", 60.0)):
        await pending_approval(
            ledger,
            user_id="auth0|alice",
            thread_id=f"t-{name}",
            tool_call_id="c1",
            binding_message=f"Create public gist {name}.md",
            digest="f" * 64,
            auth_req_id=f"req-{name}",
            interval=interval,
        )
    await close_all()


def test_resumer_once_wakes_only_due_requests_through_the_callback(tmp_path) -> None:
    recorder = Recorder()
    with get_settings.override(approvals_db=str(tmp_path / "ledger.sqlite3")):
        asyncio.run(_seed())
        set_resumer(recorder)
        try:
            with serve(Starlette(routes=routes)) as url:
                result = CliRunner().invoke(app, ["resumer", "--once", "--server", url])
        finally:
            set_resumer(None)
    assert result.exit_code == 0, result.output
    assert "woke 1 thread" in result.output
    assert recorder.woken == ["req-due"]


async def test_the_servers_http_app_runs_the_poller_in_its_lifespan(tmp_path) -> None:
    from graph.http_app import create_app

    recorder = Recorder()
    with get_settings.override(
        approvals_db=str(tmp_path / "ledger.sqlite3"), ciba_delivery_mode="poll"
    ):
        await asyncio.to_thread(asyncio.run, _seed())
        set_resumer(recorder)
        try:
            with get_settings.override(resumer_enabled=False):
                app = create_app()
                async with app.router.lifespan_context(app):
                    await asyncio.sleep(0.8)
            assert recorder.woken == []  # disabled: no poller
            app = create_app()
            async with app.router.lifespan_context(app):
                deadline = time.monotonic() + 5
                while not recorder.woken and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
        finally:
            set_resumer(None)
            await close_all()
    assert recorder.woken == ["req-due"]
