"""The chat model factory: offline by default, OpenAI (or compatible) by setting, clear errors."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from graph.model import ModelConfigError, chat_model, make_chat_model
from graph.nodes.agent import agent
from graph.offline_model import OfflineChatModel
from settings import get_settings


@pytest.fixture
def settings_env(monkeypatch):
    def apply(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"WARRANT_{key.upper()}", value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


def test_offline_is_the_default(settings_env) -> None:
    settings_env()
    assert isinstance(make_chat_model(), OfflineChatModel)
    assert chat_model() is chat_model()  # built once per configuration


def test_openai_with_key(settings_env, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings_env(model="openai:gpt-4o-mini", openai_api_key="sk-test-not-real")
    model = make_chat_model()
    assert type(model).__name__ == "ChatOpenAI"
    assert model.model_name == "gpt-4o-mini"
    assert model.openai_api_key.get_secret_value() == "sk-test-not-real"
    assert model.openai_api_base is None


def test_openai_compatible_server_by_base_url(settings_env, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings_env(model="openai:llama3.1", openai_base_url="http://127.0.0.1:11434/v1")
    model = make_chat_model()
    assert model.model_name == "llama3.1"
    assert model.openai_api_base == "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("openai:gpt-4o-mini", "needs WARRANT_OPENAI_API_KEY"),
        ("openai:", "needs a model name"),
        ("anthropic:claude", "unknown chat model 'anthropic:claude'"),
        ("gpt-4", "unknown chat model 'gpt-4'"),
    ],
)
def test_bad_model_settings_are_clear_errors(settings_env, spec: str, message: str) -> None:
    settings_env(model=spec)
    with pytest.raises(ModelConfigError, match=message):
        make_chat_model()


async def test_agent_node_reports_a_bad_model_setting_instead_of_crashing(settings_env) -> None:
    settings_env(model="nonsense")
    out = await agent({"messages": [HumanMessage("hi")]}, {})
    [reply] = out["messages"]
    assert isinstance(reply, AIMessage) and not reply.tool_calls
    assert "not configured" in reply.content and "unknown chat model 'nonsense'" in reply.content


async def test_agent_node_reports_a_failing_model(settings_env, monkeypatch) -> None:
    settings_env()

    class Broken(OfflineChatModel):
        def _generate(self, *args, **kwargs):
            raise ConnectionError("upstream said: key=sk-leaky")

    monkeypatch.setattr("graph.nodes.agent.chat_model", lambda settings: Broken())
    out = await agent({"messages": [HumanMessage("hi")]}, {})
    text = out["messages"][0].content
    assert "failed (ConnectionError); nothing was done" in text
    assert "sk-leaky" not in text


def test_build_graph_takes_a_spec_or_a_model_and_refuses_anything_else(settings_env) -> None:
    from graph.agent import build_graph
    from graph.model import describe_model

    settings_env()
    assert build_graph(model="offline") is not None
    assert build_graph(model=OfflineChatModel()) is not None
    with pytest.raises(ModelConfigError, match="unknown chat model 'nonsense'"):
        build_graph(model="nonsense")
    with pytest.raises(ModelConfigError, match="needs a model name"):
        build_graph(model="openai:")
    with pytest.raises(ModelConfigError, match="not int"):
        build_graph(model=42)
    assert describe_model(OfflineChatModel()) == "offline"
