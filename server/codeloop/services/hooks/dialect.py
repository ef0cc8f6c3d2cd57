"""What a hook written for Claude Code sees of a codeloop tool call, and back.

A hook from a ``.claude/`` settings file (or one marked ``"payload": "claude"``) is sent
Claude Code's tool name and input field names, so scripts that test
``tool_name == "Bash"`` and read ``tool_input.command`` or ``tool_input.file_path`` work
unchanged. The input it returns as ``updatedInput`` is mapped back to codeloop's fields.

Each tool knows its own Claude Code spelling (``BaseTool.claude_names``,
``claude_input``, ``from_claude_input``; see ``codeloop/tools/claude.py``): the shell
tools are ``Bash`` (seconds of ``timeout`` become milliseconds; a background process has
``run_in_background``), the file tools ``Read``/``Write``/``Edit`` with an absolute
``file_path``, a patch an ``Edit`` with ``patch`` and ``file_paths``, and so on. Tools
without a Claude Code name (MCP tools, the diagnostics tool) are sent as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeloop.tools.base import BaseTool

# Finds the tool a call named (the session's registry ``get``).
ToolLookup = Callable[[str], BaseTool | None]

MODE_TO_CLAUDE = {"ask": "default", "acceptEdits": "acceptEdits", "plan": "plan", "bypass": "bypassPermissions"}


def to_claude(tool: BaseTool | None, name: str, tool_input: dict[str, Any], root: Path) -> tuple[str, dict[str, Any]]:
    """Claude Code's name and input for a call of ``name`` (the tool's own when it has none)."""
    if tool is None or not tool.claude_names:
        return name, dict(tool_input)
    return tool.claude_names[0], tool.claude_input(tool_input, root)


def from_claude(tool: BaseTool | None, claude_input: dict[str, Any], root: Path) -> dict[str, Any]:
    """codeloop's input for ``tool`` from an input in Claude Code's field names."""
    if tool is None or not tool.claude_names:
        return dict(claude_input)
    return tool.from_claude_input(claude_input, root)


def input_changes(tool: BaseTool | None, name: str, original: dict[str, Any], updated: dict[str, Any],
                  dialect: str, root: Path) -> dict[str, Any]:
    """The codeloop fields a hook's ``updatedInput`` changes.

    ``updated`` is merged over the input the hook was sent (so a hook may return only
    the fields it changes, or the whole input), mapped back to codeloop's names when the
    hook speaks Claude Code's, and compared with ``original``: only real changes are
    returned (a path given back in another spelling of the same file is no change).
    """
    if dialect == "claude":
        _, sent = to_claude(tool, name, original, root)
        new = from_claude(tool, {**sent, **updated}, root)
    else:
        new = {**original, **updated}
    changes: dict[str, Any] = {}
    for key, value in new.items():
        if key in original:
            old = original[key]
            if old == value or (tool is not None and tool.same_argument(key, old, value, root)):
                continue
        changes[key] = value
    return changes
