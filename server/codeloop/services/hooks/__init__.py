"""Hooks: user commands run at points of the agent's life, in Claude Code's format.

Public API::

    hooks, problems = load_hooks(root, config_home, claude_home)      # blocking; or await aload_hooks(...)
    engine = HookEngine(hooks, root, trust, on_run=callback, problems=problems)
    result = await engine.run("PreToolUse", {"tool_name": tool.name, "tool_input": {...}})
    engine.matching("PreToolUse", tool.name)                         # what would run

See :mod:`.config` (files, matchers), :mod:`.engine` (outcomes, aggregation),
:mod:`.dialect` (what hooks written for Claude Code are sent) and :mod:`.runner`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from codeloop.services.hooks.config import (
    DEFAULT_TIMEOUT,
    EVENTS,
    HookConfig,
    Matcher,
    Problem,
    SettingsFile,
    default_claude_home,
    load_hooks,
    settings_files,
)
from codeloop.services.hooks.engine import (
    HookEngine,
    HookOutcome,
    HookResult,
    HookRun,
    HookSession,
    Permission,
    ProjectTrust,
    describe_run,
)


async def aload_hooks(root: Path, config_home: Path | None = None,
                      claude_home: Path | None = None) -> tuple[list[HookConfig], list[Problem]]:
    """:func:`load_hooks` in a worker thread (it reads files)."""
    return await asyncio.to_thread(load_hooks, root, config_home, claude_home)


def settings_stamp(root: Path, config_home: Path | None = None,
                   claude_home: Path | None = None) -> tuple[tuple[str, int, int] | None, ...]:
    """mtime and size of each hooks settings file: reload when it changes (blocking, cheap)."""
    out: list[tuple[str, int, int] | None] = []
    for sf in settings_files(root, config_home, claude_home):
        try:
            st = sf.path.stat()
        except OSError:
            out.append(None)
            continue
        out.append((str(sf.path), st.st_mtime_ns, st.st_size))
    return tuple(out)


__all__ = [
    "DEFAULT_TIMEOUT", "EVENTS", "HookConfig", "HookEngine", "HookOutcome", "HookResult", "HookRun",
    "HookSession", "Matcher", "Permission", "Problem", "ProjectTrust", "SettingsFile", "aload_hooks",
    "default_claude_home", "describe_run", "load_hooks", "settings_files", "settings_stamp",
]
