"""The FGA authorization model for documents (`model.fga`) and installing it where it is missing.

`doc#can_view` is what retrieval asks; `owner`, `viewer` (users, everyone, group members) and
`parent` folders (whose viewers, recursively, may view) are what ingestion and sharing write.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODEL_FILE = Path(__file__).resolve().parent / "model.fga"


def document_model() -> dict[str, Any]:
    """The document model as OpenFGA JSON (parsed from `model.fga` by the project's DSL parser)."""
    from auth.fga.language import dsl_to_json

    return dsl_to_json(MODEL_FILE.read_text(encoding="utf-8"))


def _has_doc_type(model: dict[str, Any]) -> bool:
    types = {t.get("type"): t for t in model.get("type_definitions", [])}
    return "can_view" in (types.get("doc", {}).get("relations") or {})


async def ensure_document_model(fga: Any) -> str | None:
    """Give an embedded store the document model if it has none; returns the new model id.

    Only the embedded engine is touched (an OpenFGA server's model is deployed by its owner). A
    store whose latest model has no `doc#can_view` is left alone but logged: retrieval will fail
    closed against it.
    """
    store = getattr(fga, "store", None)
    store_id = getattr(fga, "store_id", None)
    if store is None or store_id is None or not hasattr(fga, "write_model"):
        return None
    models = store.list_models(store_id)
    if models:
        latest = store.read_model(store_id)
        if not _has_doc_type(latest):
            log.warning("the FGA store's latest model has no doc#can_view; documents stay hidden")
        return None
    return await fga.write_model(document_model())
