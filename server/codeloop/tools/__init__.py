"""The agent's tools and the registry helpers the hosts use.

``default_tools()`` gives one instance of every tool; ``default_registry()``
wraps them in a ToolRegistry. ``read_only=True`` keeps only the tools that
change nothing (plan mode).
"""

from __future__ import annotations

from typing import Any

from codeloop.tools.base import Tool, ToolContext, ToolError, ToolRegistry, ToolResult
from codeloop.tools.diagnostics import DIAGNOSTICS_TOOLS
from codeloop.tools.files import FILE_TOOLS
from codeloop.tools.patch import PATCH_TOOLS
from codeloop.tools.processes import ProcessManager
from codeloop.tools.search import SEARCH_TOOLS
from codeloop.tools.shell import SHELL_TOOLS
from codeloop.tools.workspace import PathOutsideWorkspace, Workspace

ALL_TOOL_CLASSES: list[type[Tool[Any]]] = [*SEARCH_TOOLS, *FILE_TOOLS, *PATCH_TOOLS, *SHELL_TOOLS, *DIAGNOSTICS_TOOLS]

#: Names of the tools that change nothing (offered in plan mode).
READ_ONLY: frozenset[str] = frozenset(c.name for c in ALL_TOOL_CLASSES if c.read_only)


def default_tools(*, read_only: bool = False) -> list[Tool[Any]]:
    """One instance of every tool; only the read-only ones when ``read_only``."""
    return [cls() for cls in ALL_TOOL_CLASSES if cls.read_only or not read_only]


def default_registry(*, read_only: bool = False) -> ToolRegistry:
    return ToolRegistry(default_tools(read_only=read_only))


def is_read_only(name: str) -> bool:
    return name in READ_ONLY


__all__ = [
    "ALL_TOOL_CLASSES",
    "READ_ONLY",
    "PathOutsideWorkspace",
    "ProcessManager",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "Workspace",
    "default_registry",
    "default_tools",
    "is_read_only",
]
