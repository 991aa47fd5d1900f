"""Protobuf-JSON compaction: print a model the way OpenFGA's own tools print it."""

from __future__ import annotations

from typing import Any

# Empty objects that carry meaning in a model (`"this": {}` is a direct assignment).
_MEANINGFUL_EMPTY = frozenset({"this", "wildcard"})


def compact(value: Any) -> Any:
    """Drop what protobuf JSON leaves out (nulls, empty lists and maps), keeping `{}` markers
    such as `"this": {}` and `"wildcard": {}`."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _MEANINGFUL_EMPTY and item == {}:
                out[key] = {}
                continue
            normal = compact(item)
            if normal not in (None, [], {}):
                out[key] = normal
        return out
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value
