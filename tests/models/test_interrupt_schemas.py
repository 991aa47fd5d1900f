"""Interrupt payloads are typed: each type has a JSON schema, and what the graph raises fits it."""

from __future__ import annotations

import jsonschema
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graph.agent import build_graph
from graph.interrupts import (
    CANCEL,
    RESUME_VALUES,
    UnknownInterrupt,
    interrupt_schemas,
    parse_interrupt,
)
from tests.models.conftest import check_interrupt, connect_github, disconnect_github, turn
from tests.models.openai_server import call, last_tool_results, say


def test_every_type_has_a_schema_and_a_documented_resume() -> None:
    schemas = interrupt_schemas()
    assert set(schemas) == {"connection_required", "approval_pending"} == set(RESUME_VALUES)
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["type"]["const"] == name
        assert schema["additionalProperties"] is False
    assert "cancel" in CANCEL


def test_payloads_that_do_not_fit_are_refused() -> None:
    with pytest.raises(UnknownInterrupt):
        parse_interrupt({"type": "something_else"})
    with pytest.raises(jsonschema.ValidationError):
        check_interrupt({"type": "approval_pending", "approval_id": "a"})
    with pytest.raises(jsonschema.ValidationError):
        check_interrupt(
            {
                "type": "connection_required",
                "connection": "github",
                "scopes": [],
                "missing_scopes": [],
                "connect_url": "http://x",
                "tool": "t",
                "message": "m",
                "access_token": "smuggled",  # nothing beyond the schema
            }
        )


async def test_the_interrupts_the_graph_raises_fit_their_schemas(oa_world, thread_config):
    """connection_required from the approval node's preflight, approval_pending, and a cancel;
    (`turn` checks every interrupt of every model test the same way)."""
    world, server, cfg = oa_world, oa_world.openai, thread_config
    graph = build_graph(checkpointer=InMemorySaver())
    await disconnect_github(world)
    args = {"description": "notes", "content": world.marker, "filename": "n.md"}
    server.add(call("create_public_gist", args), lambda b: say(" ".join(last_tool_results(b))))
    _, [first] = await turn(graph, "publish", cfg, world.ctx)
    assert first["type"] == "connection_required" and first["tool"] == "create_public_gist"
    await connect_github(world, ["gist"])
    _, [second] = await turn(graph, Command(resume="connected"), cfg, world.ctx)
    assert second["type"] == "approval_pending" and second["arguments"] == args
    values, interrupts = await turn(graph, Command(resume="cancel"), cfg, world.ctx)
    assert interrupts == [] and "You cancelled" in values["messages"][-1].content
    assert world.gists() == 0
