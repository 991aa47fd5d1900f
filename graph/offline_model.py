"""The offline chat model: deterministic tool routing for demos and tests, no network, no weights.

It reads the user's words, picks one of the tools bound to it (by intent rules over the tools'
names and descriptions) with arguments taken from the words, and after the tools answer it
writes the final reply from their results. Every reply says it comes from the offline model, so
nobody mistakes its canned phrasing for a language model's judgement.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

PREFIX = "[offline model]"
MAX_RESULT_CHARS = 4000

_STOP = frozenset(
    """a an the me my mine i we our us you your please find search show list give get tell
    what which who whom are is was be do does did can could would will some any most more top
    best popular famous starred trending good great cool interesting new latest for about on of
    in to with and or related regarding matching around into github repo repos repository
    repositories projects project libraries library code look up lookup""".split()
)


@dataclass(frozen=True)
class ToolSpec:
    """What the model knows of a bound tool: its name, description and JSON parameters."""

    name: str
    description: str
    parameters: dict[str, Any]

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.parameters.get("properties", {}))


@dataclass(frozen=True)
class Plan:
    """A decision: call `tool` with `args`, or answer with `reply` (exactly one is set)."""

    tool: str | None = None
    args: dict[str, Any] | None = None
    reply: str | None = None


def message_text(message: BaseMessage) -> str:
    """The plain text of a message whose content may be a list of content blocks."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return " ".join(parts)


def _clean(value: str) -> str:
    """Trim whitespace, surrounding quotes and trailing punctuation or politeness."""
    value = value.strip().strip("\"'`“”").strip()
    value = re.sub(r"(?:\s+(?:please|for me|on github|thanks?|thank you))+$", "", value, flags=re.I)
    return value.strip().rstrip("?.!,;:").strip().strip("\"'`“”").strip()


_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|`([^`]+)`|(?:^|\s)'([^']+)'(?=\s|$|[.,!?])")


def _quoted(text: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)]


def _first_quoted_or_rest(fragment: str, stop: str | None = None) -> str:
    """A quoted string at the start of `fragment`, else the words up to `stop` (a regex)."""
    fragment = fragment.strip()
    m = _QUOTED.match(fragment)
    if m:
        return next(g for g in m.groups() if g is not None)
    if stop:
        fragment = re.split(stop, fragment, maxsplit=1, flags=re.I)[0]
    return _clean(fragment)


# ---- intent rules, one per known tool: (matches the words?, arguments from the words) ----


def _is_identity_question(text: str) -> bool:
    return bool(
        re.search(
            r"\bwho\s*am\s*i\b|\bwhoami\b|\bmy (?:identity|user ?id|account)\b|"
            r"\bwho are you (?:acting|working) for\b|\bwhich user\b|\bsigned in as\b",
            text,
            re.I,
        )
    )


def _identity_args(text: str, spec: ToolSpec) -> Plan:
    return Plan(tool=spec.name, args={})


def _is_gist_request(text: str) -> bool:
    return bool(re.search(r"\bgists?\b", text, re.I)) and bool(
        re.search(r"\b(create|make|publish|post|share|write|new|save|put)\b", text, re.I)
    )


_CONTENT_KEYS = (
    r"\b(?:with (?:the )?(?:content|contents|text|body|code)|containing|contents?:|"
    r"that says|saying|which says)\s*:?\s*"
)
_DESCRIPTION_KEYS = r"\b(?:described as|with (?:the )?description|description:?|titled|title:?)\s*"
_FILENAME_KEYS = r"\b(?:named|called|file ?name:?|as file|in (?:a )?file)\s*"
_FILENAME = r"[`'\"“]?([\w.-]+\.[A-Za-z0-9]{1,10})[`'\"”]?"


def _gist_args(text: str, spec: ToolSpec) -> Plan:
    args: dict[str, Any] = {}
    filename = re.search(_FILENAME_KEYS + _FILENAME, text, re.I)
    if filename and "filename" in spec.properties:
        args["filename"] = filename.group(1)
    stop_words = r"\s+(?:with|containing|named|called|described|titled|saying|that says)\b"
    description = re.search(_DESCRIPTION_KEYS + r"(.+)", text, re.I)
    about = re.search(r"\babout\s+(.+)", text, re.I)
    content = re.search(_CONTENT_KEYS + r"(.+)", text, re.I | re.S)
    taken = {args.get("filename")}
    body: str | None = None
    if content:
        body = _first_quoted_or_rest(content.group(1), stop=None)
    else:
        # No keyword: the first quoted string that is not the file name or the description.
        desc_text = _first_quoted_or_rest(description.group(1), stop_words) if description else None
        taken.add(desc_text)
        body = next((q for q in _quoted(text) if q not in taken), None)
    if not body:
        return Plan(
            reply=(
                f"{PREFIX} What should the Gist contain? Put the content in quotes, for example: "
                'create a public gist named hello.py with content "print(42)".'
            )
        )
    args["content"] = body
    if description:
        desc = _first_quoted_or_rest(description.group(1), stop_words)
    elif about:
        desc = _first_quoted_or_rest(about.group(1), stop_words)
    else:
        desc = body.strip().splitlines()[0][:60] if body.strip() else "Gist"
    if "description" in spec.properties:
        args["description"] = desc or "Gist"
    return Plan(tool=spec.name, args=args)


_DOC_WORDS = (
    r"\b(internal|documents?|docs|memos?|handbook|polic(?:y|ies)|notes|wiki|"
    r"knowledge base|intranet|files?)\b"
)


def _is_document_question(text: str) -> bool:
    return bool(re.search(_DOC_WORDS, text, re.I))


def _document_args(text: str, spec: ToolSpec) -> Plan:
    about = re.search(r"\b(?:about|on|regarding|concerning)\s+(.+)", text, re.I)
    question = _clean(about.group(1)) if about else ""
    if not question:
        # No topic phrase: the whole question, minus a lead-in such as "search the docs:".
        question = _clean(re.sub(r"^\s*(?:search|check|look in)\b[^:]*:\s*", "", text, flags=re.I))
    return Plan(tool=spec.name, args={_single_param(spec, "question"): question or text.strip()})


def _is_github_request(text: str) -> bool:
    return bool(
        re.search(r"\b(github|repos?|repositor(?:y|ies)|open[- ]source projects?)\b", text, re.I)
    )


def _github_args(text: str, spec: ToolSpec) -> Plan:
    patterns = (
        r"\b(?:repos|repositories|repository|projects|libraries)\s+"
        r"(?:about|on|for|related to|regarding|matching|with|in|that use|using)\s+(.+)",
        r"\bsearch\s+github\s+(?:for\s+)?(.+)",
        r"\b(?:about|for|on)\s+(.+)",
    )
    query = ""
    for pattern in patterns:
        m = re.search(pattern, text, re.I)
        if m:
            query = _clean(m.group(1))
            if query:
                break
    if not query:
        words = [w for w in re.findall(r"[\w#+.-]+", text) if w.lower() not in _STOP]
        query = " ".join(words).strip(".")
    if not query:
        return Plan(reply=f"{PREFIX} What should I search GitHub for? Name a topic, e.g. 'AI'.")
    return Plan(tool=spec.name, args={_single_param(spec, "query"): query})


def _single_param(spec: ToolSpec, preferred: str) -> str:
    if preferred in spec.properties or not spec.properties:
        return preferred
    return (spec.required or list(spec.properties))[0]


_Rule = tuple[str, Callable[[str], bool], Callable[[str, ToolSpec], Plan]]
_RULES: tuple[_Rule, ...] = (
    ("who_am_i", _is_identity_question, _identity_args),
    ("create_public_gist", _is_gist_request, _gist_args),
    ("search_github_repositories", _is_github_request, _github_args),
    ("search_internal_documents", _is_document_question, _document_args),
)


def _generic(text: str, specs: Sequence[ToolSpec]) -> Plan | None:
    """A tool without a rule: chosen when the words overlap its name and description enough."""
    words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)} - _STOP
    best: tuple[int, ToolSpec] | None = None
    for spec in specs:
        vocabulary = {
            w.lower() for w in re.findall(r"[A-Za-z]{4,}", f"{spec.name} {spec.description}")
        }
        score = len(words & vocabulary)
        if score >= 2 and (best is None or score > best[0]):
            best = (score, spec)
    if best is None:
        return None
    spec = best[1]
    string_params = [
        name for name, schema in spec.properties.items() if schema.get("type") == "string"
    ]
    if len(spec.required) > 1 or (spec.required and spec.required[0] not in string_params):
        return None  # arguments the offline model cannot infer from plain words
    if not spec.properties:
        return Plan(tool=spec.name, args={})
    return Plan(tool=spec.name, args={(spec.required or string_params)[0]: _clean(text)})


def plan_for(text: str, specs: Sequence[ToolSpec]) -> Plan:
    """Decide what to do with the user's words, given the tools bound to the model."""
    by_name = {spec.name: spec for spec in specs}
    for name, matches, arguments in _RULES:
        if name in by_name and matches(text):
            return arguments(text, by_name[name])
    generic = _generic(text, [s for s in specs if s.name not in {r[0] for r in _RULES}])
    if generic is not None:
        return generic
    if not specs:
        return Plan(reply=f"{PREFIX} I have no tools bound, so I can only say that I read: {text}")
    listing = "\n".join(f"- {s.name}: {s.description.strip().splitlines()[0]}" for s in specs)
    return Plan(
        reply=(
            f"{PREFIX} I am a deterministic stand-in for a language model and only act on clear "
            f"requests. I can use these tools:\n{listing}"
        )
    )


# ---- the final answer, written from tool results ----


def _render_repositories(data: dict[str, Any]) -> str:
    repos = data.get("repositories") or []
    query = data.get("query", "")
    if not repos:
        return f"GitHub has no repositories matching {query!r}."
    total = data.get("total_count")
    head = f"Top {len(repos)} GitHub repositories for {query!r}"
    head += f" (of {total} matches):" if isinstance(total, int) else ":"
    lines = [head]
    for n, repo in enumerate(repos, start=1):
        if not isinstance(repo, dict):
            continue
        name = repo.get("full_name") or repo.get("name")
        stars = repo.get("stars", repo.get("stargazers_count"))
        line = f"{n}. {name}"
        if stars is not None:
            line += f" ({stars} stars)"
        if repo.get("description"):
            line += f": {repo['description']}"
        if repo.get("url") or repo.get("html_url"):
            line += f" <{repo.get('url') or repo.get('html_url')}>"
        lines.append(line)
    return "\n".join(lines)


def _render_result(content: str) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return content
    if isinstance(data, dict) and isinstance(data.get("repositories"), list):
        return _render_repositories(data)
    if isinstance(data, dict):
        return "\n".join(
            f"{key}: {value}"
            for key, value in data.items()
            if isinstance(value, str | int | float | bool) or value is None
        )
    return content


def summarize(results: Sequence[ToolMessage]) -> str:
    """The final answer: each tool's result in readable form, errors said plainly."""
    parts = []
    for message in results:
        name = message.name or "the tool"
        text = message_text(message).strip()
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + " [...]"
        if message.status == "error":
            parts.append(f"{name} did not complete: {text}")
        else:
            parts.append(f"From {name}:\n{_render_result(text)}")
    return f"{PREFIX} " + "\n\n".join(parts)


def _call_id(messages: Sequence[BaseMessage], name: str, text: str) -> str:
    # Deterministic, yet unique per position in the thread: the same request made twice in one
    # thread is two actions (approvals are keyed by tool call id).
    seed = f"{len(messages)}\x00{name}\x00{text}"
    return "call_" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def respond(messages: Sequence[BaseMessage], specs: Sequence[ToolSpec]) -> AIMessage:
    """The offline model's reply to a conversation."""
    trailing: list[ToolMessage] = []
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            trailing.append(message)
        else:
            break
    if trailing:
        return AIMessage(content=summarize(list(reversed(trailing))))
    last_human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    if last_human is None or messages[-1] is not last_human:
        return AIMessage(content=f"{PREFIX} Ask me something to get started.")
    text = message_text(last_human).strip()
    if not text:
        return AIMessage(content=f"{PREFIX} Your message was empty; ask me something.")
    plan = plan_for(text, specs)
    if plan.tool is None:
        return AIMessage(content=plan.reply or PREFIX)
    call = {
        "name": plan.tool,
        "args": plan.args or {},
        "id": _call_id(messages, plan.tool, text),
        "type": "tool_call",
    }
    return AIMessage(content="", tool_calls=[call])


def _specs(tools: Sequence[dict[str, Any]] | None) -> list[ToolSpec]:
    specs = []
    for item in tools or ():
        function = item.get("function", item)
        specs.append(
            ToolSpec(
                name=str(function.get("name", "")),
                description=str(function.get("description", "")),
                parameters=dict(function.get("parameters") or {}),
            )
        )
    return specs


class OfflineChatModel(BaseChatModel):
    """A deterministic chat model that routes requests to bound tools; named in every reply."""

    @property
    def _llm_type(self) -> str:
        return "warrant-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": "offline"}

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the way chat models do: as OpenAI-format schemas the model reads."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = respond(messages, _specs(kwargs.get("tools")))
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Pure computation: no executor hop needed.
        return self._generate(messages, stop, None, **kwargs)
