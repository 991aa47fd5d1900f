"""The graph against the running devstack: a real login, the real provider's Token Vault grant."""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graph.agent import build_graph
from graph.context import signed_in_context


async def test_unconnected_user_gets_the_providers_connect_interrupt(
    use_devstack, login_as, devstack
) -> None:
    tokens = login_as("bob")
    context = await signed_in_context(tokens.access_token)
    assert context.user_email == "bob@example.com"
    graph = build_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "dev-1"}}
    ask = {"messages": [("user", "show me popular repositories about AI")]}
    out = await graph.ainvoke(ask, config, context=context)
    [item] = out["__interrupt__"]
    assert item.value["type"] == "connection_required"
    assert item.value["connect_url"].startswith(devstack.issuer)
    # the forged "I connected" resume: the provider still says no, so it asks again
    out = await graph.ainvoke(Command(resume="connected"), config, context=context)
    assert out["__interrupt__"][0].value["type"] == "connection_required"
    assert tokens.access_token not in str(out)
