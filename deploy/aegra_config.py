"""`aegra.json`, generated from `langgraph.json`: one source of truth for what is served.

Aegra reads `langgraph.json` itself, but two of its entries need adapters on Aegra 0.6.x: its
custom app must be a FastAPI instance (Warrant's is Starlette) and it calls the `authenticate`
handler with the headers only. The generated file keeps `graphs` and `dependencies` (paths made
absolute, so it can live outside the repository) and names the adapters, which themselves load
whatever `langgraph.json` names for `auth.path` and `http.app`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH_JSON = REPO / "langgraph.json"
AUTH_ADAPTER = "deploy.aegra_auth:auth"
APP_ADAPTER = "deploy.aegra_app:app"


class ConfigError(Exception):
    """`langgraph.json` lacks something the production server needs."""


def load_langgraph_config(path: Path = LANGGRAPH_JSON) -> dict[str, Any]:
    """`langgraph.json` as a dict; a clear error when it is missing or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("graphs"), dict):
        raise ConfigError(f"{path} has no 'graphs' object")
    return data


def _absolute(entry: str, base: Path) -> str:
    """`./graph/agent.py:graph` made absolute; module paths (`pkg.mod:obj`) kept."""
    target, sep, name = entry.rpartition(":")
    if not sep or not (target.endswith(".py") or target.startswith(".")):
        return entry
    return f"{(base / target).resolve()}:{name}"


def aegra_config(source: Path = LANGGRAPH_JSON) -> dict[str, Any]:
    """The Aegra configuration for the graphs, auth and routes that `source` names."""
    config = load_langgraph_config(source)
    base = source.resolve().parent
    for key in ("auth", "http"):
        if not (config.get(key) or {}).get("path" if key == "auth" else "app"):
            raise ConfigError(f"{source} names no {key} module; Warrant is not served without it")
    return {
        "dependencies": [str((base / d).resolve()) for d in config.get("dependencies", ["."])],
        "graphs": {gid: _absolute(entry, base) for gid, entry in config["graphs"].items()},
        "auth": {"path": AUTH_ADAPTER},
        # Custom routes keep their own authentication (the ping callback checks its bearer).
        "http": {"app": APP_ADAPTER, "enable_custom_route_auth": False},
    }


def write_aegra_config(target: Path, source: Path = LANGGRAPH_JSON) -> Path:
    """Write `aegra.json` for `source` to `target` (a file path); returns it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(aegra_config(source), indent=2) + "\n")
    return target


def load_named(entry: str, base: Path = REPO) -> Any:
    """The object a `langgraph.json` entry names (`./file.py:obj` or `module:obj`), imported
    as its package module so that it is the same object the rest of Warrant uses."""
    target, sep, name = entry.rpartition(":")
    if not sep:
        raise ConfigError(f"{entry!r} is not 'path:object'")
    if target.endswith(".py"):
        path = (base / target).resolve()
        try:
            module_name = ".".join(path.relative_to(base.resolve()).with_suffix("").parts)
        except ValueError:
            raise ConfigError(f"{entry!r} lies outside {base}") from None
    else:
        module_name = target
    module = importlib.import_module(module_name)
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigError(f"{module_name} has no {name!r}") from None


def langgraph_entry(key: str, field: str, source: Path = LANGGRAPH_JSON) -> Any:
    """What `langgraph.json`'s `key.field` names (`auth.path`, `http.app`), imported."""
    config = load_langgraph_config(source)
    entry = (config.get(key) or {}).get(field)
    if not isinstance(entry, str):
        raise ConfigError(f"{source} names no {key}.{field}")
    return load_named(entry, source.resolve().parent)
