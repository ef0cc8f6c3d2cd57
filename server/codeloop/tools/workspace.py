"""The workspace guard: every path a tool touches resolves inside the root."""

from __future__ import annotations

import os
from pathlib import Path


class PathOutsideWorkspace(ValueError):
    pass


class Workspace:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """Resolve ``path`` (relative to the root, or absolute) to a real path inside it.

        Symlinks are followed, so a link inside the workspace that points out of it
        is refused. Raises PathOutsideWorkspace with a message for the model.
        """
        raw = os.fspath(path)
        if "\x00" in raw:
            raise PathOutsideWorkspace(f"invalid path {raw!r}: it contains a NUL byte")
        if raw.strip() == "":
            raise PathOutsideWorkspace("empty path")
        expanded = Path(raw).expanduser() if raw.startswith("~") else Path(raw)
        candidate = expanded if expanded.is_absolute() else self.root / expanded
        # strict=False: the file may not exist yet (write_file), but any existing
        # prefix, symlinks included, is resolved.
        real = Path(os.path.realpath(candidate))
        # realpath gives up on a symlink loop and then collapses "loop/.." as text,
        # which can land on a link pointing out. A settled path resolves to itself.
        if os.path.realpath(real) != str(real):
            raise PathOutsideWorkspace(f"path {raw!r} could not be resolved (a symlink loop?), so it is treated as outside the workspace")
        if real != self.root and self.root not in real.parents:
            raise PathOutsideWorkspace(
                f"path {raw!r} resolves to {real}, which is outside the workspace {self.root}"
            )
        return real

    def relative(self, path: Path) -> str:
        try:
            rel = path.resolve().relative_to(self.root)
        except ValueError:
            return str(path)
        return rel.as_posix() or "."

    def contains(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return real == self.root or self.root in real.parents
