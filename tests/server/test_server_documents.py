"""Document search through a real `langgraph dev` (blockbuster on, no `--allow-blocking`).

Every node path that opens Chroma, loads the embedding model, reads FGA tuples from SQLite or
reads files runs here as the server runs it: a blocking call on the event loop would turn the
answer into "the document store is unavailable" and leave "Blocking call" in the server log.
The corpus is ingested by `warrant ingest` in processes of their own (as a user does), once
before the server starts and once while it serves, so the served agent must see both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client

from tests.server.conftest import REPO, LangGraphServer, run_langgraph_dev
from vectorstore.demo import (
    DEMO_QUESTION,
    PRIVATE_DOC,
    PRIVATE_FACT,
    PUBLIC_FACT,
    PUBLIC_QUESTION,
    SHARED_FACT,
    SHARED_QUESTION,
    demo_documents,
)

pytestmark = pytest.mark.server

LATE_FACT = "the Kestrel review board meets on the third Thursday at 09:40"
LATE_QUESTION = "Search the internal documents: when does the Kestrel review board meet?"
BLOCKING = "Blocking call"


def ingest(data_dir: Path, *args: str) -> None:
    """`warrant ingest ARGS` as its own process, into the server's data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARRANT_")}
    env.update({"WARRANT_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)})
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def ingest_demo_corpus(data_dir: Path) -> None:
    for doc in demo_documents():
        args = [str(doc.path), "--owner", doc.sharing.owner]
        for viewer in doc.sharing.viewers:
            args += ["--viewer", viewer]
        if doc.sharing.public:
            args.append("--public")
        ingest(data_dir, *args)


def ask(server: LangGraphServer, token: str, question: str) -> str:
    """One question on a new thread as the token's user; the agent's last message."""
    client = get_sync_client(
        url=server.url, api_key=None, headers={"Authorization": f"Bearer {token}"}
    )
    thread = client.threads.create()
    values = client.runs.wait(
        thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": question}]}
    )
    assert isinstance(values, dict), values
    return str(values["messages"][-1]["content"])


def assert_nothing_blocked(server: LangGraphServer) -> None:
    log = server.log_text()
    blocked = [line for line in log.splitlines() if BLOCKING in line]
    assert not blocked, "\n".join(blocked[:5])
    assert "store failure" not in log


@pytest.fixture(scope="module")
def documents_server(devstack, tmp_path_factory) -> Iterator[LangGraphServer]:
    cwd = tmp_path_factory.mktemp("langgraph-documents")
    ingest_demo_corpus(cwd / "warrant-data")  # the folder run_langgraph_dev gives the server
    with run_langgraph_dev(devstack, cwd) as server:
        yield server


def test_the_owner_reads_her_private_document(documents_server, alice_tokens) -> None:
    answer = ask(documents_server, alice_tokens.access_token, DEMO_QUESTION)
    assert PRIVATE_FACT in answer, answer
    assert "unavailable" not in answer
    assert_nothing_blocked(documents_server)


def test_another_user_gets_nothing_of_it(documents_server, bob_tokens) -> None:
    answer = ask(documents_server, bob_tokens.access_token, DEMO_QUESTION)
    assert PRIVATE_FACT not in answer and PRIVATE_DOC not in answer
    assert "unavailable" not in answer and "search_internal_documents" in answer
    assert_nothing_blocked(documents_server)


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_shared_and_public_documents_reach_both(
    documents_server, alice_tokens, bob_tokens, who
) -> None:
    token = (alice_tokens if who == "alice" else bob_tokens).access_token
    assert SHARED_FACT in ask(documents_server, token, SHARED_QUESTION)
    assert PUBLIC_FACT in ask(documents_server, token, PUBLIC_QUESTION)
    assert_nothing_blocked(documents_server)


def test_a_document_ingested_while_serving_is_found(
    documents_server, alice_tokens, bob_tokens, tmp_path
) -> None:
    before = ask(documents_server, bob_tokens.access_token, LATE_QUESTION)
    assert "09:40" not in before  # the served store is open, and has no such document yet
    late = tmp_path / "kestrel-board.md"
    late.write_text(f"# Kestrel review board\n\nBob's note: {LATE_FACT}.\n", encoding="utf-8")
    ingest(documents_server.cwd / "warrant-data", str(late), "--owner", "bob@example.com")
    assert "09:40" in ask(documents_server, bob_tokens.access_token, LATE_QUESTION)
    assert "09:40" not in ask(documents_server, alice_tokens.access_token, LATE_QUESTION)
    assert_nothing_blocked(documents_server)
