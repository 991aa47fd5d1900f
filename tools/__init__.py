"""Warrant's own tools, by name, with their declared requirements.

The four tools the default graph binds, in the order the model sees them. Your own tools need
no registration: declare them with `tools.base.declare(...)` and pass them to
`graph.agent.build_graph(tools=[...])` or to `graph.middleware.WarrantMiddleware`.
The tool modules are imported on first use, so that `from tools.base import declare` stays light.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool

from tools.base import ToolRequirements, requirements_of

_defaults: tuple[BaseTool, ...] | None = None


def default_tools() -> list[BaseTool]:
    """`who_am_i`, GitHub search, public Gist creation, internal-document search."""
    global _defaults
    if _defaults is None:
        from tools.documents import search_internal_documents
        from tools.gist import create_public_gist
        from tools.github import search_github_repositories
        from tools.identity import who_am_i

        _defaults = (
            who_am_i,
            search_github_repositories,
            create_public_gist,
            search_internal_documents,
        )
    return list(_defaults)


def registry() -> dict[str, BaseTool]:
    """The default tools by name."""
    return {tool.name: tool for tool in default_tools()}


def all_tools() -> list[BaseTool]:
    """The default tools, in order."""
    return default_tools()


def get_tool(name: str) -> BaseTool | None:
    """The default tool called `name`, or None when there is no such tool."""
    return registry().get(name)


def requirements(name: str) -> ToolRequirements | None:
    """What the default tool called `name` declared, or None when there is no such tool."""
    tool = get_tool(name)
    return requirements_of(tool) if tool is not None else None


__all__ = ["all_tools", "default_tools", "get_tool", "registry", "requirements"]
