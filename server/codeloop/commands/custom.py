"""Custom slash commands: the Markdown files of a workspace and of the user
(``codeloop.context.custom_commands``), loaded in a worker thread and reloaded when
they change (a stat walk of the folders, also in a thread, before each use).

The command table tries its built-in commands first: a file named like one of them is
only reached by its qualified name (``/project:help`` would not be; ``/frontend:help``
is).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from codeloop.commands.parse import parse_slash
from codeloop.context.custom_commands import MAX_DEPTH, CustomCommands, command_dirs, load_custom_commands
from codeloop.policy.sources import default_claude_home, default_config_home


class CommandFiles:
    """The custom commands of one workspace (and the user's)."""

    def __init__(self, root: Path, config_home: Path | None = None, claude_home: Path | None = None) -> None:
        self.root = Path(root)
        self.config_home = config_home if config_home is not None else default_config_home()
        self.claude_home = claude_home if claude_home is not None else default_claude_home()
        self.commands = CustomCommands()
        self._stamp: Any = None
        self._lock = asyncio.Lock()

    def _dirs(self) -> list[Path]:
        return [d for d, _, _ in command_dirs(self.root, self.config_home, self.claude_home)]

    async def get(self) -> CustomCommands:
        """The commands as the files say now."""
        async with self._lock:
            stamp = await asyncio.to_thread(_stamp, self._dirs())
            if stamp != self._stamp:
                self.commands = await asyncio.to_thread(load_custom_commands, self.root, self.config_home,
                                                        self.claude_home)
                self._stamp = stamp
            return self.commands


_BY_ROOT: dict[tuple[Path, Path, Path], CommandFiles] = {}


def for_workspace(root: Path) -> CommandFiles:
    """The (shared) custom commands of ``root`` with the user's current config folders."""
    key = (Path(root).resolve(), default_config_home(), default_claude_home())
    files = _BY_ROOT.get(key)
    if files is None:
        files = _BY_ROOT[key] = CommandFiles(key[0], key[1], key[2])
    return files


async def expand(text: str, root: Path) -> str | None:
    """The prompt a custom command line stands for (``/fix-issue 12``), or None when
    ``text`` is not one (for hosts without the built-in commands, ``codeloop run``)."""
    parsed = parse_slash(text, lambda word: None)
    if parsed is None or parsed.name != "unknown":
        return None
    command, _ = (await for_workspace(root).get()).lookup(parsed.raw)
    return command.expand(parsed.arg) if command is not None else None


def _stamp(dirs: list[Path]) -> tuple[Any, ...]:
    """mtime and size of every folder and Markdown file under ``dirs`` (blocking, cheap)."""
    out: list[Any] = []

    def walk(d: Path, depth: int) -> None:
        try:
            out.append((str(d), d.stat().st_mtime_ns))
            entries = sorted(d.iterdir())
        except OSError:
            out.append((str(d), None))
            return
        for p in entries:
            try:
                if p.is_dir():
                    if depth < MAX_DEPTH:
                        walk(p, depth + 1)
                elif p.suffix == ".md":
                    st = p.stat()
                    out.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                continue

    for d in dirs:
        walk(d, 0)
    return tuple(out)


__all__ = ["CommandFiles", "expand", "for_workspace"]
