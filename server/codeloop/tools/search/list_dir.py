"""The list_dir tool: one directory (or a shallow tree), without ignored entries."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from pydantic import Field

from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import Tool, ToolContext, ToolError, ToolInput, ToolResult, first_line, plural
from codeloop.tools.files import file_permission
from codeloop.tools.search.fs import DIR_FLAGS, open_beneath
from codeloop.tools.search.ignore import ALWAYS_SKIP, IgnoreMatcher
from codeloop.tools.search.scope import SearchStart, search_start

LIST_MAX = 500


def _list_dir(ctx: ToolContext, start: SearchStart, depth: int) -> tuple[list[str], int, list[str]]:
    """Every folder is opened from its parent's descriptor without following symlinks
    (``fs``): a folder swapped for a symlink is reported as not listable, never followed."""
    root = ctx.workspace.root
    matcher = IgnoreMatcher(root)
    out: list[str] = []
    ignored: list[str] = []
    total = 0

    def visit(fd: int, directory: Path, level: int) -> None:
        nonlocal total
        try:
            entries = sorted(os.scandir(fd), key=lambda e: e.name)
        except OSError as e:
            out.append("  " * level + f"[cannot list: {e.strerror}]")
            return
        for entry in entries:
            if entry.name in ALWAYS_SKIP:
                continue
            path = directory / entry.name
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_link, is_dir = False, False
            if matcher.matches(path, is_dir and not is_link):
                if level == 0:
                    ignored.append(entry.name + ("/" if is_dir else ""))
                continue
            total += 1
            if len(out) >= LIST_MAX:
                continue
            name = entry.name + ("/" if is_dir else "")
            if is_link:
                try:
                    name += f" -> {os.readlink(entry.name, dir_fd=fd)}"
                except OSError:
                    name += " -> ?"
            out.append("  " * level + name)
            if is_dir and not is_link and level + 1 < depth:
                opened(partial(os.open, entry.name, DIR_FLAGS, dir_fd=fd), path, level + 1)

    def opened(open_fd: Callable[[], int], directory: Path, level: int) -> None:
        try:
            fd = open_fd()
        except OSError as e:
            out.append("  " * level + f"[cannot list: {e.strerror}]")
            return
        try:
            visit(fd, directory, level)
        finally:
            os.close(fd)

    opened(partial(open_beneath, root, start.rel), start.path, 0)
    return out, total, ignored


class ListDir(Tool["ListDir.Input"]):
    name = "list_dir"
    claude_names = ("LS",)
    claude_fields = {"path": ("path", "path")}
    description = "List a folder (folders end with '/'), skipping what .gitignore ignores; depth > 1 gives a tree."
    read_only = True
    kind = "Read"

    class Input(ToolInput):
        path: str = "."
        depth: int = Field(1, ge=1, le=5, description="Levels to show.")

    def summary(self, args: Input) -> str:
        return args.path or "."

    def outcome(self, args: Input, result: ToolResult) -> str:
        if not result.ok:
            return first_line(result.text)
        entries = [ln for ln in result.text.splitlines() if ln.strip() and not ln.startswith(("[", "("))]
        return plural(len(entries), "entry").replace("entrys", "entries")

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return file_permission("Read", args.path, ctx)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        start = search_start(ctx, args.path)
        rel = start.rel
        if not start.is_dir:
            raise ToolError(f"{rel} is a file, not a directory; use read_file to read it")
        out, total, ignored = await asyncio.to_thread(_list_dir, ctx, start, args.depth)
        head = f"{rel}/" if rel != "." else "./"
        lines = [head] + ["  " + x for x in out]
        if not out:
            lines.append("  (empty)")
        if total > len(out):
            lines.append(f"[{total - len(out)} more entries cut; list a subdirectory or use glob to narrow]")
        if ignored:
            shown = ", ".join(ignored[:10]) + (", ..." if len(ignored) > 10 else "")
            lines.append(f"[{len(ignored)} ignored entries hidden (.gitignore): {shown}]")
        return "\n".join(lines)
