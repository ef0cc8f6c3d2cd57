"""Shared helpers for the tool tests (no tests here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from codeloop.core.ports import NoDocuments
from codeloop.edits.disk import DiskChangeApplier
from codeloop.tools.base import ToolContext, ToolResult
from codeloop.tools.builtin import builtin_registry as default_registry
from codeloop.tools.processes import ProcessManager
from codeloop.tools.workspace import Workspace

REGISTRY = default_registry()


def make_ctx(root: Path, **kw: Any) -> ToolContext:
    kw.setdefault("changes", DiskChangeApplier(root=root))
    kw.setdefault("processes", ProcessManager())
    kw.setdefault("documents", NoDocuments())
    return ToolContext(workspace=Workspace(root), **kw)


async def call(ctx: ToolContext, name: str, **args: Any) -> ToolResult:
    parsed = REGISTRY.parse(name, json.dumps(args))
    if isinstance(parsed, ToolResult):
        return parsed
    tool, inp = parsed
    return await REGISTRY.run(tool, inp, ctx)


def live_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes in group ``pgid``.

    os.killpg(pgid, 0) is the portable check, but in containers whose init does not
    reap orphans, killed grandchildren stay as zombies in the group; they are dead.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    alive = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        if rest[2] == str(pgid) and rest[0] not in ("Z", "X"):
            alive.append(int(name))
    return alive
