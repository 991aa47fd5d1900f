"""The tool registry: every tool whose module exists, by name, with its declared requirements.

Tools are written by different parts of the project (GitHub search, Gist creation, document
search); a module that is not there yet simply contributes nothing, so the graph never binds a
tool that cannot run.
"""

from __future__ import annotations

import importlib

from langchain_core.tools import BaseTool

from tools.base import ToolRequirements, requirements_of

# module -> the tools it exports, in the order the model sees them
TOOL_MODULES: dict[str, tuple[str, ...]] = {
    "tools.identity": ("who_am_i",),
    "tools.github": ("search_github_repositories",),
    "tools.gist": ("create_public_gist",),
    "tools.documents": ("search_internal_documents",),
}

_registry: dict[str, BaseTool] | None = None


def _load() -> dict[str, BaseTool]:
    found: dict[str, BaseTool] = {}
    for module_name, names in TOOL_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # the module exists but one of its imports is missing
                raise
            continue
        for name in names:
            tool = getattr(module, name)
            if not isinstance(tool, BaseTool):
                raise TypeError(f"{module_name}.{name} is not a LangChain tool")
            found[tool.name] = tool
    return found


def registry() -> dict[str, BaseTool]:
    """Every available tool by name (loaded once per process)."""
    global _registry
    if _registry is None:
        _registry = _load()
    return _registry


def all_tools() -> list[BaseTool]:
    """Every available tool, in registry order."""
    return list(registry().values())


def get_tool(name: str) -> BaseTool | None:
    """The tool called `name`, or None when there is no such tool."""
    return registry().get(name)


def requirements(name: str) -> ToolRequirements | None:
    """What the tool called `name` declared, or None when there is no such tool."""
    tool = get_tool(name)
    return requirements_of(tool) if tool is not None else None


__all__ = ["TOOL_MODULES", "all_tools", "get_tool", "registry", "requirements"]
