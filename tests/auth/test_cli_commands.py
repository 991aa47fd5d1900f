"""`warrant login --browser`, `whoami`, `logout` through typer, against the devstack provider."""

from __future__ import annotations

import asyncio
import stat
import threading

import pytest
from typer.testing import CliRunner

from cli.main import app
from settings import get_settings
from tests.auth.browser import approve_device, authorize_in_browser

runner = CliRunner()


@pytest.fixture
def cli_env(use_devstack, devstack, tmp_path, monkeypatch):
    password = devstack.settings.bob_password.get_secret_value()
    threads: list[threading.Thread] = []

    def fake_open(url: str) -> bool:
        thread = threading.Thread(
            target=asyncio.run, args=(authorize_in_browser(url, "bob@example.com", password),)
        )
        thread.start()
        threads.append(thread)
        return True

    monkeypatch.setattr("webbrowser.open", fake_open)
    with get_settings.override(data_dir=tmp_path) as settings:
        yield settings
    for thread in threads:
        thread.join(10)


def test_login_whoami_logout(cli_env) -> None:
    result = runner.invoke(app, ["login", "--browser"])
    assert result.exit_code == 0, result.output
    assert "Logged in as bob@example.com" in result.output
    path = cli_env.data_dir / "cli" / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text()

    who = runner.invoke(app, ["whoami"])
    assert who.exit_code == 0, who.output
    assert "bob@example.com" in who.output and "auth0|bob" in who.output
    # No token string is ever printed.
    import json

    for name in ("access_token", "refresh_token", "id_token"):
        assert json.loads(stored)[name] not in who.output + result.output

    out = runner.invoke(app, ["logout"])
    assert out.exit_code == 0, out.output
    assert "revoked" in out.output
    assert not path.exists()

    again = runner.invoke(app, ["whoami"])
    assert again.exit_code == 1
    assert "not logged in" in again.output


def test_login_rejects_both_modes(cli_env) -> None:
    result = runner.invoke(app, ["login", "--device", "--browser"])
    assert result.exit_code == 2


def test_logout_when_not_logged_in(cli_env) -> None:
    result = runner.invoke(app, ["logout"])
    assert result.exit_code == 0
    assert "not logged in" in result.output


def test_login_with_the_provider_down_says_so(tmp_path) -> None:
    with get_settings.override(data_dir=tmp_path, issuer="http://127.0.0.1:9/"):
        result = runner.invoke(app, ["login", "--device"])
    assert result.exit_code == 1
    assert "unavailable" in result.output
    assert "Traceback" not in result.output


def test_login_with_the_device_flow(cli_env, devstack, monkeypatch) -> None:
    import cli.login

    shown = cli.login._show_device_code
    password = devstack.settings.alice_password.get_secret_value()
    approvals: list[threading.Thread] = []

    def show_and_approve(code) -> None:
        shown(code)  # what the user sees: the URL and the code
        approval = approve_device(code.verification_uri_complete, "alice@example.com", password)
        approvals.append(threading.Thread(target=asyncio.run, args=(approval,)))
        approvals[-1].start()

    monkeypatch.setattr(cli.login, "_show_device_code", show_and_approve)
    result = runner.invoke(app, ["login", "--device"])
    for thread in approvals:
        thread.join(10)
    assert result.exit_code == 0, result.output
    assert "enter the code" in result.output
    assert "Logged in as alice@example.com" in result.output
    assert (cli_env.data_dir / "cli" / "tokens.json").exists()


def test_whoami_with_a_dead_refresh_token_asks_for_a_new_login(cli_env) -> None:
    import time

    from auth.login import TokenFile, TokenSet

    TokenFile().save(
        TokenSet(
            access_token="x.y.z",
            expires_at=time.time() - 10,
            issuer=cli_env.issuer_url,
            client_id=cli_env.cli_client_id,
            audience=cli_env.audience,
            subject="auth0|bob",
            refresh_token="not-a-real-refresh-token",
        )
    )
    result = runner.invoke(app, ["whoami"])
    assert result.exit_code == 1
    assert "log in again" in result.output
    assert "not-a-real-refresh-token" not in result.output


def test_approvals_list_never_wraps_the_id_a_user_copies(monkeypatch) -> None:
    import time

    import cli.approvals

    record = {
        "id": "apr_c6weat4295",
        "binding_message": "Create public gist notes.md #de218b",
        "client_name": "Warrant agent",
        "authorization_details": [
            {"tool": "create_public_gist", "action_digest": "de218b71a937ea9f4a44db31f79d32919a"}
        ],
        "scope": "openid create:gist",
        "audience": "https://api.warrant.local",
        "status": "pending",
        "expires_at": time.time() + 300,
    }

    async def answer(method: str, path: str, body=None):
        return [record]

    monkeypatch.setattr(cli.approvals, "_call", answer)
    monkeypatch.setattr(cli.approvals, "console", cli.approvals.Console(width=80))
    result = runner.invoke(app, ["approvals", "list"])
    assert result.exit_code == 0, result.output
    assert "apr_c6weat4295" in result.output  # on one line, as `approve ID` needs it


def test_with_the_local_provider_down_every_command_says_to_start_the_devstack(tmp_path) -> None:
    import base64
    import json
    import time

    from auth.login import TokenFile, TokenSet

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    dead = "http://127.0.0.1:9/"
    # well formed, so that checking it needs the provider's keys
    token = f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part({'sub': 'auth0|alice'})}.c2ln"
    with get_settings.override(data_dir=tmp_path, issuer=dead) as settings:
        login = runner.invoke(app, ["login", "--device"])
        TokenFile().save(
            TokenSet(
                access_token=token,
                expires_at=time.time() + 3600,
                issuer=dead,
                client_id=settings.cli_client_id,
                audience=settings.audience,
                subject="auth0|alice",
                refresh_token="refresh-token-for-the-approvals-api",
            )
        )
        outcomes = [
            login,
            runner.invoke(app, ["whoami"]),
            runner.invoke(app, ["chat", "-m", "who am I?"]),
            runner.invoke(app, ["approvals", "list"]),
        ]
    for result in outcomes:
        assert result.exit_code == 1, result.output
        text = " ".join(result.output.split())
        assert "unavailable" in text and "`warrant devstack`" in text, text
        assert "Traceback" not in text


def test_a_remote_provider_down_gets_no_devstack_hint(tmp_path) -> None:
    from auth.errors import ProviderUnavailable
    from cli.errors import explain

    down = ProviderUnavailable("The identity provider", "discovery failed: ConnectError")
    with get_settings.override(issuer="https://tenant.example.auth0.com/"):
        assert "devstack" not in explain(down)
    with get_settings.override(issuer="http://127.0.0.1:9400/"):
        assert "warrant devstack" in explain(down)
        assert explain(ValueError("x")) == "x"
