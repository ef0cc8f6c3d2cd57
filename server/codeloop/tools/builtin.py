"""The built-in tool source: one instance of every tool class codeloop ships.

Adding a built-in tool: write its class in its own module (or beside its
siblings) and list it here. Nothing else needs to know its name.
"""

from __future__ import annotations

from collections.abc import Sequence

from codeloop.tools.base import BaseTool
from codeloop.tools.registry import ToolRegistry
from codeloop.tools.diagnostics import GetDiagnostics
from codeloop.tools.files import EditFile, ReadFile, WriteFile
from codeloop.tools.patch import ApplyPatch
from codeloop.tools.search import SEARCH_TOOLS
from codeloop.tools.shell import KillProcess, ReadCommandOutput, RunCommand
from codeloop.tools.todo import TodoWrite

TOOL_CLASSES: list[type[BaseTool]] = [
    *SEARCH_TOOLS,
    ReadFile,
    WriteFile,
    EditFile,
    ApplyPatch,
    RunCommand,
    ReadCommandOutput,
    KillProcess,
    GetDiagnostics,
    TodoWrite,
]


class BuiltinTools:
    """The ``ToolSource`` of the built-in tools (its list never changes)."""

    name = "builtin"

    def __init__(self) -> None:
        self._tools: list[BaseTool] = [cls() for cls in TOOL_CLASSES]

    def tools(self) -> Sequence[BaseTool]:
        return self._tools

    @property
    def version(self) -> int:
        return 0


def builtin_registry() -> ToolRegistry:
    """A registry of the built-in tools alone (tests, tools' own callers)."""
    return ToolRegistry([BuiltinTools()])


__all__ = ["TOOL_CLASSES", "BuiltinTools", "builtin_registry"]
