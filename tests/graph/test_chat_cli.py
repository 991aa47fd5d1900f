"""`warrant chat`: signed-in identity from a validated token, turns, interrupts and resumes."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from auth.errors import InvalidToken
from cli.chat import _chat
from cli.main import app
from graph.context import Context, signed_in_context
from settings import get_settings
from tests.graph.conftest import CANARY_SUBJECT_TOKEN

ALICE = Context(
    user_id="auth0|alice", user_email="alice@example.com", subject_token=CANARY_SUBJECT_TOKEN
)


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    path = tmp_path / "chat.sqlite"
    monkeypatch.setenv("WARRANT_CHECKPOINT_URL", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=False), out


def test_chat_without_login_says_so() -> None:
    result = CliRunner().invoke(app, ["chat", "-m", "hello"])
    assert result.exit_code == 1
    assert "not logged in" in result.output and "warrant login" in result.output


def test_resume_needs_a_thread() -> None:
    result = CliRunner().invoke(app, ["chat", "--resume", "x"])
    assert result.exit_code == 2 and "--resume needs --thread" in result.output


async def test_signed_in_context_from_a_real_login(use_devstack, alice_tokens) -> None:
    context = await signed_in_context(alice_tokens.access_token)
    assert context.user_id.startswith("auth0|alice")  # the token's `sub`
    assert context.user_email == "alice@example.com"  # from userinfo
    assert context.subject_token == alice_tokens.access_token
    assert alice_tokens.access_token not in repr(context)


def _store_login(settings, access_token: str, expires_at: float = 9e9) -> None:
    """Write the token file `warrant login` would write, in the current data folder."""
    from auth.login import TokenFile, TokenSet

    TokenFile().save(
        TokenSet(
            access_token=access_token,
            expires_at=expires_at,
            issuer=settings.issuer_url,
            client_id=settings.cli_client_id,
            audience=settings.audience,
            subject="recorded-at-login",
        )
    )


async def test_chat_uses_the_stored_login(use_devstack, alice_tokens, tmp_path) -> None:
    with get_settings.override(data_dir=tmp_path) as settings:
        _store_login(settings, alice_tokens.access_token, alice_tokens.expires_at)
        console, out = _console()
        assert await _chat(None, ["who am i"], None, console, context=None) == 0
    assert "You are alice@example.com (user id auth0|alice" in out.getvalue()
    assert alice_tokens.access_token not in out.getvalue()


async def test_a_forged_stored_token_is_refused(use_devstack, mint_token, tmp_path) -> None:
    forged = mint_token.alg_none()
    with pytest.raises(InvalidToken):
        await signed_in_context(forged)
    with get_settings.override(data_dir=tmp_path) as settings:
        _store_login(settings, forged)
        console, out = _console()
        assert await _chat(None, ["who am i"], None, console, context=None) == 1
    assert "algorithm is not accepted" in out.getvalue() and forged not in out.getvalue()


async def test_turns_interrupt_and_resume_across_invocations(provider, checkpoints) -> None:
    console, out = _console()
    code = await _chat("th-1", ["show me popular repositories about AI"], None, console, ALICE)
    text = out.getvalue()
    assert code == 3
    assert "-> search_github_repositories" in text and "connected-accounts/connect" in text
    assert "warrant chat --thread th-1" in text

    provider.connected = True
    console, out = _console()
    assert await _chat("th-1", [], "done", console, ALICE) == 0
    assert "Top 5 GitHub repositories for 'AI'" in out.getvalue()
    data = b"".join(p.read_bytes() for p in checkpoints.parent.glob("chat.sqlite*"))
    assert b"auth0|alice" in data
    assert CANARY_SUBJECT_TOKEN.encode() not in data and provider.github_token.encode() not in data


async def test_interactive_loop(checkpoints, monkeypatch) -> None:
    from cli import chat as chat_module

    console, out = _console()
    inputs = iter(["who am i", "/thread", "/new", "who am i", "/quit"])
    monkeypatch.setattr(console, "input", lambda prompt="": next(inputs))
    assert await chat_module._chat("th-2", [], None, console, ALICE) == 0
    text = out.getvalue()
    assert text.count("You are alice@example.com") == 2
    assert "th-2" in text and "new thread" in text


POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except Exception:
        return False


async def test_chat_threads_in_postgres(monkeypatch) -> None:
    if not _postgres_reachable():
        pytest.skip(f"no PostgreSQL reachable at {POSTGRES_URL}")
    import uuid

    import psycopg

    monkeypatch.setenv("WARRANT_CHECKPOINT_URL", POSTGRES_URL)
    get_settings.cache_clear()
    thread = f"pg-{uuid.uuid4()}"
    try:
        console, out = _console()
        assert await _chat(thread, ["hello"], None, console, ALICE) == 0
        console, out = _console()
        assert await _chat(thread, ["who am i"], None, console, ALICE) == 0
        assert "You are alice@example.com" in out.getvalue()
    finally:
        get_settings.cache_clear()
    secret = CANARY_SUBJECT_TOKEN.encode()
    with psycopg.connect(POSTGRES_URL) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread,)
        ).fetchone()
        assert rows[0] >= 4
        leaks = conn.execute(
            """SELECT
                 (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s
                    AND (checkpoint::text LIKE %(like)s OR metadata::text LIKE %(like)s))
               + (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %(t)s
                    AND position(%(raw)s in blob) > 0)
               + (SELECT count(*) FROM checkpoint_writes WHERE thread_id = %(t)s
                    AND position(%(raw)s in blob) > 0)""",
            {"t": thread, "like": f"%{CANARY_SUBJECT_TOKEN}%", "raw": secret},
        ).fetchone()
        assert leaks[0] == 0


def test_interrupt_rendering() -> None:
    from cli.chat import ChatSession

    console, out = _console()
    session = ChatSession(graph=None, context=ALICE, console=console, thread_id="x")
    session._render_interrupt(
        {"type": "approval_pending", "binding_message": "Create gist 42", "expires_at": "soon"}
    )
    session._render_interrupt({"type": "something_else", "detail": 7})
    text = out.getvalue()
    assert "Approve 'Create gist 42' on your authenticator before soon." in text
    assert '"detail": 7' in text


BOB = Context(user_id="auth0|bob", user_email="bob@example.com", subject_token="bob-canary-token")


async def test_another_users_thread_is_refused_before_anything_is_shown(
    provider, checkpoints
) -> None:
    console, out = _console()
    assert await _chat("th-own", ["show me repositories about AI"], None, console, ALICE) == 3
    assert "connected-accounts/connect" in out.getvalue()
    for resume in (None, "done"):
        console, out = _console()
        assert await _chat("th-own", [], resume, console, BOB) == 1
        text = out.getvalue()
        assert "belongs to another user" in text
        assert "connected-accounts/connect" not in text and "github" not in text.lower()
    assert provider.exchanges == 1  # only alice's own run asked the vault


async def test_resume_of_a_thread_with_nothing_pending_fails_clearly(checkpoints) -> None:
    console, out = _console()
    assert await _chat("th-none", [], "done", console, ALICE) == 1
    assert "There is no conversation th-none to resume" in out.getvalue()
    assert await _chat("th-done", ["who am i"], None, _console()[0], ALICE) == 0
    console, out = _console()
    assert await _chat("th-done", [], "done", console, ALICE) == 1
    assert "not waiting for anything" in out.getvalue()


async def test_an_unknown_thread_id_is_said_to_be_new(checkpoints) -> None:
    console, out = _console()
    assert await _chat("th-typo", ["who am i"], None, console, ALICE) == 0
    assert "No conversation th-typo yet: starting it." in out.getvalue()
    console, out = _console()
    assert await _chat("th-typo", ["who am i"], None, console, ALICE) == 0
    assert "yet: starting it" not in out.getvalue()


async def test_text_at_the_resume_prompt_is_not_taken_as_a_resume(
    provider, checkpoints, monkeypatch
) -> None:
    from cli import chat as chat_module

    console, out = _console()
    assert await _chat("th-3", ["show me repositories about AI"], None, console, ALICE) == 3
    before = provider.exchanges
    console, out = _console()
    inputs = iter(["yes, approved", "who am i", "/quit"])
    monkeypatch.setattr(console, "input", lambda prompt="": next(inputs))
    assert await chat_module._chat("th-3", [], None, console, ALICE) == 0
    text = out.getvalue()
    assert text.count("This conversation is waiting") == 2
    assert provider.exchanges == before  # nothing was resumed
    assert "You are alice" not in text  # the message was not swallowed as a resume either
    assert "paused: resume with `warrant chat --thread th-3`" in text


async def test_interactive_end_of_input_while_paused_says_how_to_resume(
    provider, checkpoints, monkeypatch
) -> None:
    from cli import chat as chat_module

    console, out = _console()

    prompts: list[str] = []

    def ask(prompt: str = "") -> str:
        prompts.append(prompt)
        if "resume>" in prompt or len(prompts) > 3:
            raise EOFError
        return "show me repositories about AI"

    monkeypatch.setattr(console, "input", ask)
    assert await chat_module._chat("th-4", [], None, console, ALICE) == 0
    assert "paused: resume with `warrant chat --thread th-4`" in out.getvalue()


def test_connection_panel_names_the_page_once() -> None:
    from cli.chat import ChatSession

    console, out = _console()
    session = ChatSession(graph=None, context=ALICE, console=console, thread_id="x")
    url = "http://127.0.0.1:9400/connected-accounts/connect?connection=github&scopes=gist"
    session._render_interrupt(
        {
            "type": "connection_required",
            "connection": "github",
            "missing_scopes": ["gist"],
            "connect_url": url,
            "message": f"Connect your github account (gist) to continue: {url}",
        }
    )
    text = out.getvalue()
    assert text.count(url) == 1
    assert "github account with access to gist" in text and "press Enter" in text


def test_approval_panel_shows_a_time_and_how_to_answer() -> None:
    from cli.chat import ChatSession

    console, out = _console()
    session = ChatSession(graph=None, context=ALICE, console=console, thread_id="x")
    session._render_interrupt(
        {"type": "approval_pending", "binding_message": "Create gist 42", "expires_at": 0.5e9}
    )
    text = out.getvalue()
    assert "500000000" not in text and "before 00:53:20 UTC" in text
    assert "warrant approvals approve ID" in text and "Typing here approves nothing" in text
