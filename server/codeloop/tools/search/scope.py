"""Where a search starts: a real path inside the workspace."""

from __future__ import annotations

from pathlib import Path

from codeloop.tools.base import ToolContext, ToolError
from codeloop.tools.files import resolve_path


def search_start(ctx: ToolContext, path: str) -> tuple[Path, str]:
    """The resolved search root and its workspace-relative form for rg."""
    start = resolve_path(ctx, path or ".")
    if not start.exists():
        raise ToolError(f"path not found: {path}")
    return start, ctx.workspace.relative(start)
