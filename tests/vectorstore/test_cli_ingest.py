"""`warrant ingest / share / unshare / forget / documents` through typer's runner."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

import cli.ingest as cli_ingest
from settings import get_settings
from tests.vectorstore.memory_fga import MemoryFGA


@pytest.fixture
def app(tmp_path, monkeypatch, embedding_model):
    monkeypatch.setenv("WARRANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WARRANT_CHROMA_COLLECTION", "cli-docs")
    get_settings.cache_clear()
    fga = MemoryFGA()
    monkeypatch.setattr(cli_ingest, "_fga_client", lambda settings: fga)
    app = typer.Typer()
    cli_ingest.register(app)
    app.fga = fga  # type: ignore[attr-defined]
    yield app
    get_settings.cache_clear()


def run(app, *args):
    return CliRunner().invoke(app, list(args))


def test_ingest_share_unshare_forget(app, tmp_path):
    doc = tmp_path / "plan.md"
    doc.write_text("# Plan\n\nThe codename is Heron.")
    out = run(
        app, "ingest", str(doc), "--owner", "alice@example.com", "--viewer", "bob@example.com"
    )
    assert out.exit_code == 0, out.output
    assert "plan" in out.output and "added" in out.output
    assert ("user:bob@example.com", "viewer", "doc:plan") in app.fga.tuples

    out = run(app, "ingest", str(doc), "--owner", "alice@example.com")
    assert out.exit_code == 0 and "unchanged" in out.output

    out = run(app, "share", "plan", "--public")
    assert out.exit_code == 0 and ("user:*", "viewer", "doc:plan") in app.fga.tuples
    out = run(app, "unshare", "plan", "--public", "--with", "bob@example.com")
    assert out.exit_code == 0 and "removed 2" in out.output
    assert app.fga.visible_docs("user:bob@example.com") == set()

    out = run(app, "documents")
    assert out.exit_code == 0 and "Plan" in out.output

    out = run(app, "forget", "plan")
    assert out.exit_code == 0 and "deleted" in out.output
    assert app.fga.tuples == set()


def test_bad_files_exit_non_zero_with_reason(app, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "good.txt").write_text("fine content")
    out = run(
        app, "ingest", str(tmp_path / "empty.txt"), str(tmp_path / "good.txt"), "--owner", "a@b.co"
    )
    assert out.exit_code == 1
    assert "empty" in out.output and "Traceback" not in out.output
    assert "good" in out.output and "added" in out.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("share", "nope", "--with", "bob@example.com"), "ingest it first"),
        (("share", "nope"), "ingest it first"),
        (("forget", "nope"), "no document"),
        (("ingest", "/does/not/exist.txt", "--owner", "a@b.co"), "cannot read"),
        (("ingest", "{two_files}", "--owner", "not-an-email", "--id", "x"), "exactly one file"),
    ],
)
def test_errors_are_messages_not_tracebacks(app, args, message, tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.md").write_text("a")
    (folder / "b.md").write_text("b")
    out = run(app, *(arg.replace("{two_files}", str(folder)) for arg in args))
    assert out.exit_code == 1
    assert message in out.output and "Traceback" not in out.output


def test_fga_down(app, tmp_path):
    app.fga.fail = ConnectionError("connection refused")
    (tmp_path / "a.txt").write_text("text")
    out = run(app, "ingest", str(tmp_path / "a.txt"), "--owner", "a@b.co")
    assert out.exit_code == 1 and "FGA" in out.output
