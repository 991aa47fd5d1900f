"""`aegra.json` comes from `langgraph.json`; resume credentials; `warrant serve` refuses
settings that several processes cannot share, saying why."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from cli.main import app
from deploy.aegra_config import (
    APP_ADAPTER,
    AUTH_ADAPTER,
    LANGGRAPH_JSON,
    ConfigError,
    aegra_config,
    langgraph_entry,
)
from deploy.resume_credential import (
    SCHEME,
    InvalidResumeCredential,
    approval_of,
    resume_credential,
)
from settings import get_settings


def test_aegra_config_names_the_same_graphs_and_the_adapters() -> None:
    source = json.loads(LANGGRAPH_JSON.read_text())
    config = aegra_config()
    assert set(config["graphs"]) == set(source["graphs"])
    path, _, name = config["graphs"]["agent"].rpartition(":")
    assert path.endswith("/graph/agent.py") and path.startswith("/") and name == "graph"
    assert config["auth"] == {"path": AUTH_ADAPTER}
    assert config["http"]["app"] == APP_ADAPTER
    assert config["http"]["enable_custom_route_auth"] is False
    # The adapters load exactly what langgraph.json names.
    from auth.server_auth import auth
    from graph.http_app import app as http_app

    assert langgraph_entry("auth", "path") is auth
    assert langgraph_entry("http", "app") is http_app


def test_aegra_config_refuses_a_langgraph_json_without_auth(tmp_path) -> None:
    source = json.loads(LANGGRAPH_JSON.read_text())
    del source["auth"]
    broken = tmp_path / "langgraph.json"
    broken.write_text(json.dumps(source))
    with pytest.raises(ConfigError, match="no auth"):
        aegra_config(broken)
    broken.write_text("[]")
    with pytest.raises(ConfigError, match="graphs"):
        aegra_config(broken)


def test_resume_credentials_are_bound_signed_and_short_lived(monkeypatch) -> None:
    value = resume_credential("approval-1")
    assert value.startswith(SCHEME + " ")
    assert approval_of(value) == "approval-1"
    scheme, _, token = value.partition(" ")
    approval, expires, mac = token.split(".")
    forged = f"{scheme} approval-2.{expires}.{mac}"
    later = f"{scheme} {approval}.{int(expires) + 600}.{mac}"
    for bad in (forged, later, f"Bearer {token}", f"{scheme} x.y", f"{scheme} ..", ""):
        with pytest.raises(InvalidResumeCredential):
            approval_of(bad)
    # Another server key: refused.
    with get_settings.override(ciba_notification_token="another-key"):
        with pytest.raises(InvalidResumeCredential, match="forged"):
            approval_of(value)
    monkeypatch.setattr(time, "time", lambda: float(expires) + 1)
    with pytest.raises(InvalidResumeCredential, match="expired"):
        approval_of(value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"database_url": None}, "WARRANT_DATABASE_URL must be a postgresql://"),
        (
            {"database_url": "postgresql://db/warrant", "approvals_db": "/tmp/ledger.sqlite3"},
            "WARRANT_APPROVALS_DB must be a postgresql://",
        ),
    ],
)
def test_serve_refuses_settings_processes_cannot_share(changes, message) -> None:
    with get_settings.override(**changes):
        result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert message in result.output
