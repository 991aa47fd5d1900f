"""The offline model: tool choice and arguments from plain words, and answers from tool results."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from graph.offline_model import PREFIX, OfflineChatModel
from tools.documents import search_internal_documents
from tools.github import search_github_repositories
from tools.identity import who_am_i


@tool
def create_public_gist(description: str, content: str, filename: str = "gist.txt") -> str:
    """Create a public GitHub Gist with the given description, content and file name."""
    return "unused"


@tool
def convert_currency(amount_text: str) -> str:
    """Convert an amount of money between currencies using exchange rates."""
    return "unused"


ALL = [who_am_i, search_github_repositories, create_public_gist, search_internal_documents]


def _call(text: str, tools=ALL):
    reply = OfflineChatModel().bind_tools(tools).invoke([HumanMessage(text)])
    assert isinstance(reply, AIMessage)
    return reply


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Show me popular repositories about AI", "AI"),
        ("find github repos for langgraph please", "langgraph"),
        ("Search GitHub for vector databases", "vector databases"),
        ("What are the most starred repositories on machine learning?", "machine learning"),
        ("list some python repos", "python"),
    ],
)
def test_github_search_phrasings(text: str, query: str) -> None:
    reply = _call(text)
    assert reply.tool_calls == [
        {
            "name": "search_github_repositories",
            "args": {"query": query},
            "id": reply.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("What do my documents say about the Heron launch?", "the Heron launch"),
        ("search the internal docs: offsite budget", "offsite budget"),
        ("Is there an internal memo regarding compensation reviews", "compensation reviews"),
    ],
)
def test_document_search_phrasings(text: str, question: str) -> None:
    reply = _call(text)
    assert [c["name"] for c in reply.tool_calls] == ["search_internal_documents"]
    assert reply.tool_calls[0]["args"] == {"question": question}


@pytest.mark.parametrize(
    "text", ["who am I?", "Whoami", "which user are you acting for", "what is my user id"]
)
def test_identity_phrasings(text: str) -> None:
    reply = _call(text)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("who_am_i", {})]


def test_gist_with_filename_content_and_description() -> None:
    reply = _call(
        "Create a public gist named hello.py described as "
        '"greeting script" with content "print(42)"'
    )
    assert reply.tool_calls[0]["name"] == "create_public_gist"
    assert reply.tool_calls[0]["args"] == {
        "filename": "hello.py",
        "description": "greeting script",
        "content": "print(42)",
    }


def test_gist_content_from_quotes_and_description_from_about() -> None:
    reply = _call('please make a new public gist about my lunch: "soup and bread"')
    args = reply.tool_calls[0]["args"]
    assert args["content"] == "soup and bread"
    assert args["description"].startswith("my lunch")
    assert "filename" not in args  # the tool's own default applies


def test_gist_without_content_asks_instead_of_guessing() -> None:
    reply = _call("create a public gist")
    assert reply.tool_calls == []
    assert reply.content.startswith(PREFIX) and "What should the Gist contain" in reply.content


def test_unbound_tools_are_never_called() -> None:
    reply = _call("show me popular repositories about AI", tools=[who_am_i])
    assert reply.tool_calls == []
    assert "who_am_i" in reply.content  # says what it can do instead


def test_generic_tool_by_description_overlap() -> None:
    reply = _call(
        "convert this amount of money: 10 dollars to euros", tools=[*ALL, convert_currency]
    )
    assert reply.tool_calls[0]["name"] == "convert_currency"
    assert reply.tool_calls[0]["args"] == {
        "amount_text": "convert this amount of money: 10 dollars to euros"
    }


def test_small_talk_lists_tools_and_names_itself() -> None:
    reply = _call("hello there")
    assert reply.tool_calls == []
    assert reply.content.startswith(PREFIX)
    for t in ALL:
        assert t.name in reply.content


def test_no_tools_bound() -> None:
    reply = OfflineChatModel().invoke([HumanMessage("hi")])
    assert reply.content.startswith(PREFIX) and "no tools" in reply.content


def test_empty_and_block_content() -> None:
    assert "empty" in _call("   ").content
    reply = (
        OfflineChatModel()
        .bind_tools(ALL)
        .invoke([HumanMessage(content=[{"type": "text", "text": "who am i"}])])
    )
    assert reply.tool_calls[0]["name"] == "who_am_i"


def test_call_ids_are_deterministic_and_unique_per_position() -> None:
    first = _call("who am i").tool_calls[0]["id"]
    assert _call("who am i").tool_calls[0]["id"] == first
    history = [HumanMessage("who am i"), AIMessage("x"), HumanMessage("who am i")]
    again = OfflineChatModel().bind_tools(ALL).invoke(history).tool_calls[0]["id"]
    assert again != first


def test_answer_from_repository_results() -> None:
    result = {
        "query": "AI",
        "total_count": 321,
        "repositories": [
            {
                "full_name": "octo/brain",
                "description": "Neural things",
                "stars": 900,
                "url": "https://github.com/octo/brain",
            },
            {
                "full_name": "octo/mind",
                "description": None,
                "stars": 12,
                "url": "https://github.com/octo/mind",
            },
        ],
    }
    history = [
        HumanMessage("repos about AI"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "search_github_repositories", "args": {"query": "AI"}, "id": "c1"}
            ],
        ),
        ToolMessage(json.dumps(result), tool_call_id="c1", name="search_github_repositories"),
    ]
    reply = OfflineChatModel().bind_tools(ALL).invoke(history)
    assert reply.tool_calls == []
    assert reply.content.startswith(PREFIX)
    assert "octo/brain (900 stars): Neural things <https://github.com/octo/brain>" in reply.content
    assert "of 321 matches" in reply.content and "octo/mind" in reply.content


def test_answer_from_error_and_empty_results() -> None:
    history = [
        HumanMessage("repos about zzz"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "search_github_repositories", "args": {"query": "zzz"}, "id": "c1"}
            ],
        ),
        ToolMessage(
            "GitHub is unavailable right now",
            tool_call_id="c1",
            name="search_github_repositories",
            status="error",
        ),
    ]
    reply = OfflineChatModel().invoke(history)
    assert "did not complete: GitHub is unavailable right now" in reply.content
    empty = json.dumps({"query": "zzz", "total_count": 0, "repositories": []})
    history[-1] = ToolMessage(empty, tool_call_id="c1", name="search_github_repositories")
    assert "no repositories matching 'zzz'" in OfflineChatModel().invoke(history).content


async def test_async_path_matches_sync() -> None:
    model = OfflineChatModel().bind_tools(ALL)
    a = await model.ainvoke([HumanMessage("who am i")])
    b = model.invoke([HumanMessage("who am i")])
    assert a.tool_calls == b.tool_calls
