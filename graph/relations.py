"""The FGA relation a tool declared: only objects the user holds that relation on reach the model.

A tool declaring `RelationRequirement(relation, object_type)` returns the objects it found, each
naming itself: a LangChain `Document` with `metadata["id"]` (or `doc_id`), or a dict with an
`"id"`. Before anything reaches the model (or the thread), each object is checked with FGA
(`user:<email>` `relation` `object_type:<id>`, one batch); only `allowed` answers pass. Anything
else fails closed: text, objects without an id, an FGA error or timeout show nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from auth.audit import note_withheld
from auth.delegation import for_agent
from auth.fga.client import CheckRequest, FGAClient
from settings import get_settings
from tools.base import RelationRequirement

log = logging.getLogger(__name__)


class RelationCheckFailed(Exception):
    """The tool's output could not be checked, so none of it is shown (the text says why)."""


def object_id(item: Any) -> str | None:
    """The id an output object names itself by, or None."""
    if isinstance(item, Document):
        found = item.metadata.get("id") or item.metadata.get("doc_id") or item.id
    elif isinstance(item, dict):
        found = item.get("id")
    else:
        return None
    return str(found) if isinstance(found, str | int) and str(found) else None


def _render(item: Any) -> dict[str, Any]:
    if isinstance(item, Document):
        return {"id": object_id(item), "content": item.page_content, "metadata": item.metadata}
    return item


async def authorized_objects(
    output: Any,
    need: RelationRequirement,
    user_email: str | None,
    *,
    fga: FGAClient | None = None,
) -> list[Any]:
    """The objects of `output` that the user holds `need.relation` on, in their order."""
    if not user_email:
        raise RelationCheckFailed("your identity carries no email to check access for")
    if not isinstance(output, Sequence) or isinstance(output, str | bytes):
        raise RelationCheckFailed("the tool returned no list of objects to check")
    ids = [object_id(item) for item in output]
    if any(i is None for i in ids):
        raise RelationCheckFailed("the tool returned an object without an id")
    user = f"user:{user_email}"
    checks = [CheckRequest(user, need.relation, f"{need.object_type}:{i}") for i in ids]
    owned = fga is None
    settings = get_settings()
    try:
        if fga is None:
            from auth.fga.factory import make_fga_client

            fga = make_fga_client(settings)
        answers = await asyncio.wait_for(
            for_agent(fga, settings).batch_check(checks) if checks else _nothing(),
            settings.fga_timeout_seconds,
        )
    except Exception as exc:
        log.warning("relation check failed closed: %s", type(exc).__name__)
        raise RelationCheckFailed(f"the permission check failed ({type(exc).__name__})") from None
    finally:
        if owned and fga is not None:
            try:
                await fga.close()
            except Exception:
                log.debug("closing the FGA client failed", exc_info=True)
    if len(answers) != len(checks):
        raise RelationCheckFailed("the permission check answered the wrong number of questions")
    allowed = [item for item, answer in zip(output, answers, strict=True) if answer.allowed]
    await note_withheld(user, need.object_type, len(output) - len(allowed), ())
    return allowed


async def _nothing() -> list[Any]:
    return []


def render_objects(items: Sequence[Any]) -> str:
    """The authorized objects as the JSON text the model reads."""
    return json.dumps([_render(item) for item in items], ensure_ascii=False, default=str)
