"""The chat model factory: `settings.model` names the model, configuration only, no code change.

- `offline` (default): the deterministic tool-routing model in `graph/offline_model.py`.
- `openai:<model>`: OpenAI through langchain-openai, or any OpenAI-compatible server (Ollama,
  vLLM) when `settings.openai_base_url` is set.
"""

from __future__ import annotations

import hashlib
import threading

from langchain_core.language_models import BaseChatModel

from graph.offline_model import OfflineChatModel
from settings import Settings, get_settings

# A local OpenAI-compatible server (Ollama, vLLM) ignores the key, but the client insists on one.
_LOCAL_SERVER_KEY = "unused-by-local-server"

_models: dict[tuple[str, str | None, str | None], BaseChatModel] = {}
_lock = threading.Lock()


class ModelConfigError(ValueError):
    """`settings.model` (or its companions) does not describe a usable chat model."""


def describe(spec: str) -> str:
    """How the model names itself to the user (`offline`, `openai:gpt-4o-mini`)."""
    return spec.strip() or "offline"


def describe_model(model: BaseChatModel) -> str:
    """How a chat model instance names itself to the user (`openai:gpt-4o-mini`, `offline`)."""
    if isinstance(model, OfflineChatModel):
        return "offline"
    kind = "openai" if model._llm_type.startswith("openai") else model._llm_type
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    return f"{kind}:{name}" if isinstance(name, str) and name else kind


def resolve_model(model: str | BaseChatModel | None) -> BaseChatModel | None:
    """A graph's chat model from a spec string or an instance; None means `settings.model`.

    A bad spec raises `ModelConfigError` here, when the graph is built, not mid-conversation.
    """
    if model is None or isinstance(model, BaseChatModel):
        return model
    if isinstance(model, str):
        return make_chat_model(model)
    raise ModelConfigError(
        f"model must be a spec string ('offline', 'openai:<name>') or a LangChain chat model, "
        f"not {type(model).__name__}"
    )


def make_chat_model(spec: str | None = None, settings: Settings | None = None) -> BaseChatModel:
    """A new chat model for `spec` (default: `settings.model`)."""
    settings = settings or get_settings()
    spec = (spec if spec is not None else settings.model).strip()
    if spec == "offline":
        return OfflineChatModel()
    provider, _, name = spec.partition(":")
    if provider == "openai":
        name = name.strip()
        if not name:
            raise ModelConfigError(
                "WARRANT_MODEL=openai: needs a model name, for example openai:gpt-4o-mini"
            )
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if not key and not settings.openai_base_url:
            raise ModelConfigError(
                f"WARRANT_MODEL={spec} needs WARRANT_OPENAI_API_KEY (or WARRANT_OPENAI_BASE_URL "
                "for a local OpenAI-compatible server such as Ollama or vLLM)"
            )
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=name,
            api_key=key or _LOCAL_SERVER_KEY,
            base_url=settings.openai_base_url or None,
            timeout=settings.http_timeout_seconds * 6,
            max_retries=1,
        )
    raise ModelConfigError(
        f"unknown chat model {spec!r}: set WARRANT_MODEL to 'offline' or 'openai:<model>'"
    )


def chat_model(settings: Settings | None = None) -> BaseChatModel:
    """The process's chat model for the current settings (built once per configuration)."""
    settings = settings or get_settings()
    key = (settings.model.strip(), settings.openai_base_url, _key_digest(settings))
    with _lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = make_chat_model(settings.model, settings)
        return model


def _key_digest(settings: Settings) -> str | None:
    if settings.openai_api_key is None:
        return None
    return hashlib.sha256(settings.openai_api_key.get_secret_value().encode()).hexdigest()[:16]
