"""Shared helpers for the engine tests: DSL to JSON, and a store with a model."""

from __future__ import annotations

import functools
import json
from typing import Any

from auth.fga.client import TupleKey
from auth.fga.language import dsl_to_json
from auth.fga.store import Store


@functools.cache
def _model_json_cached(dsl: str) -> str:
    return json.dumps(dsl_to_json(dsl))


def model_json(dsl: str) -> dict[str, Any]:
    """The OpenFGA JSON of a DSL model (the project's parser, checked against `fga` elsewhere)."""
    return json.loads(_model_json_cached(dsl))


def tk(user: str, relation: str, object: str, condition: dict[str, Any] | None = None) -> TupleKey:
    if condition:
        return TupleKey(user, relation, object, condition["name"], condition.get("context"))
    return TupleKey(user, relation, object)


def tuple_from_yaml(d: dict[str, Any]) -> TupleKey:
    return tk(d["user"], d["relation"], d["object"], d.get("condition"))


def store_with(dsl: str, tuples: list[TupleKey] = ()) -> tuple[Store, str, str]:
    store = Store(":memory:")
    sid = store.create_store("test")
    mid = store.write_model(sid, model_json(dsl))
    tuples = list(tuples)
    for i in range(0, len(tuples), 100):
        store.write(sid, writes=tuples[i : i + 100])
    return store, sid, mid
