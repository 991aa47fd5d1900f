"""The server-side credential store, and the HTTP app mounted into the LangGraph server."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from auth.credentials import CredentialStore
from graph.http_app import create_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_store_put_get_expire_discard() -> None:
    clock = Clock()
    store = CredentialStore(clock=clock)
    store.put("auth0|alice", "tok-alice", expires_at=1060)
    store.put("auth0|bob", "tok-bob", expires_at=2000)
    assert store.get("auth0|alice") == "tok-alice" and store.get("auth0|bob") == "tok-bob"
    assert store.get("auth0|carol") is None
    clock.now = 1060
    assert store.get("auth0|alice") is None  # expired reads as absent, and is dropped
    assert len(store) == 1
    assert store.discard("auth0|bob") and not store.discard("auth0|bob")
    assert store.get("auth0|bob") is None


def test_store_never_prints_tokens() -> None:
    store = CredentialStore()
    store.put("auth0|alice", "tok-secret-123", expires_at=9e12)
    assert "tok-secret-123" not in repr(store)
    assert "tok-secret-123" not in repr(store._entries)


@pytest.mark.parametrize(("user", "token"), [("", "t"), ("u", "")])
def test_store_rejects_empty_values(user: str, token: str) -> None:
    with pytest.raises(ValueError):
        CredentialStore().put(user, token, expires_at=9e12)


def test_health_route_names_model_and_tools() -> None:
    with TestClient(create_app()) as client:
        answer = client.get("/warrant/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"] is True and body["model"] == "offline"
    assert "who_am_i" in body["tools"] and "search_github_repositories" in body["tools"]


def test_interrupts_route_serves_each_schema_and_its_resume_values() -> None:
    from jsonschema import Draft202012Validator, ValidationError

    with TestClient(create_app()) as client:
        answer = client.get("/warrant/interrupts")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"connection_required", "approval_pending"}
    for entry in body.values():
        assert entry["resume"] and Draft202012Validator.check_schema(entry["schema"]) is None
    # a payload missing what a client needs to render it does not fit its schema
    validator = Draft202012Validator(body["approval_pending"]["schema"])
    with pytest.raises(ValidationError):
        validator.validate({"type": "approval_pending"})


def test_graph_module_is_what_langgraph_json_names() -> None:
    import json
    from pathlib import Path

    from langgraph.graph.state import CompiledStateGraph

    from graph.agent import graph

    config = json.loads((Path(__file__).resolve().parents[2] / "langgraph.json").read_text())
    assert config["graphs"]["agent"] == "./graph/agent.py:graph"
    assert isinstance(graph, CompiledStateGraph) and graph.checkpointer is None
    schema = graph.get_context_jsonschema()
    # the server drops context keys outside the schema: no token can ride in through the API
    assert set(schema["properties"]) == {"user_id", "user_email"}
    assert set(graph.get_input_jsonschema()["properties"]) == {"messages"}
