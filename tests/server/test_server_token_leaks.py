"""After real runs on `langgraph dev`, no token string is in its data folder or its logs, even
after each user tried to store their own token through assistants, runs and crons.

The server is stopped (gracefully, so the in-memory runtime flushes `.langgraph_api/`) before
the files are searched; each token is searched whole and by its signature alone.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.server.conftest import run_langgraph_dev

pytestmark = pytest.mark.server

TURNS = ["hello", "search GitHub repositories for langgraph", "thanks"]
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def _smuggle(client, token: str, thread_id: str) -> list[int]:
    """Try to store the caller's own token through an assistant, a run and a cron (each must be
    refused: what is accepted there is written to `.langgraph_api/`)."""
    attempts = [
        lambda: client.assistants.create(
            "agent", config={"configurable": {"subject_token": token}}
        ),
        lambda: client.assistants.create("agent", context={"subject_token": token}),
        lambda: client.runs.wait(thread_id, "agent", input=HELLO, context={"subject_token": token}),
        lambda: client.crons.create(
            "agent", schedule="0 0 1 1 *", input=HELLO, context={"subject_token": token}
        ),
    ]
    statuses = []
    for attempt in attempts:
        try:
            attempt()
            statuses.append(200)
        except httpx.HTTPStatusError as exc:
            statuses.append(exc.response.status_code)
    return statuses


def _converse(url: str, token: str, smuggled: list[int]) -> str:
    client = get_sync_client(url=url, api_key=None, headers={"Authorization": f"Bearer {token}"})
    thread = client.threads.create()
    smuggled.extend(_smuggle(client, token, thread["thread_id"]))
    for text in TURNS:
        client.runs.wait(
            thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": text}]}
        )
    state = client.threads.get_state(thread["thread_id"])
    assert state["values"]["messages"], "the conversation left no messages"
    return thread["thread_id"]


@pytest.fixture(scope="module")
def finished_server(devstack, alice_tokens, bob_tokens, mint_token, tmp_path_factory):
    forged = [mint_token.expired(), mint_token.tampered(), mint_token.hs256_with_public_key()]
    with run_langgraph_dev(devstack, tmp_path_factory.mktemp("langgraph-leaks")) as server:
        smuggled: list[int] = []
        threads = [
            _converse(server.url, alice_tokens.access_token, smuggled),
            _converse(server.url, bob_tokens.access_token, smuggled),
        ]
        for token in forged:
            response = httpx.post(
                server.url + "/threads/search",
                json={},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert response.status_code == 401
    # the context exit stopped the server: its data folder is flushed and final
    secrets: dict[str, str] = {}
    for name, tokens in (("alice", alice_tokens), ("bob", bob_tokens)):
        for kind in ("access_token", "refresh_token", "id_token"):
            value = getattr(tokens, kind)
            if value:
                secrets[f"{name}.{kind}"] = value
    for i, token in enumerate(forged):
        secrets[f"forged{i}"] = token
    return server, threads, secrets, smuggled


def _needles(secrets: dict[str, str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, value in secrets.items():
        out[name] = value.encode()
        parts = value.split(".")
        if len(parts) == 3 and len(parts[2]) >= 32:
            out[f"{name}[signature]"] = parts[2].encode()
    return out


def _leaks(files: list[Path], secrets: dict[str, str]) -> list[str]:
    found = []
    needles = _needles(secrets)
    for path in files:
        data = path.read_bytes()
        for name, needle in needles.items():
            if needle in data:
                found.append(f"{name} in {path.name}")
    return found


def test_the_data_folder_was_written(finished_server) -> None:
    server, threads, _, _ = finished_server
    files = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert files, "langgraph dev wrote nothing to .langgraph_api/"
    blob = b"".join(p.read_bytes() for p in files)
    # the conversations are really in there: the check below searches real data
    assert all(thread_id.encode() in blob for thread_id in threads)


def test_no_token_in_the_data_folder(finished_server) -> None:
    server, _, secrets, _ = finished_server
    files = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert _leaks(files, secrets) == []


def test_no_token_in_the_server_logs(finished_server) -> None:
    server, _, secrets, _ = finished_server
    log = server.log_text()
    assert "POST /threads" in log or "/runs" in log  # the log really captured the requests
    assert _leaks([server.log_path], secrets) == []


def test_no_token_in_the_agents_own_data_folder(finished_server) -> None:
    # WARRANT_DATA_DIR of the server (ledger, caches): in-process credentials never land there.
    server, _, secrets, _ = finished_server
    folder = server.cwd / "warrant-data"
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert _leaks(files, secrets) == []


def test_tokens_offered_through_assistants_runs_and_crons_were_refused(finished_server) -> None:
    _, _, _, smuggled = finished_server
    assert len(smuggled) == 8
    assert all(status in (403, 422) for status in smuggled), smuggled
