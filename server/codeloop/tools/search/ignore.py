""".gitignore/.ignore/.rgignore rules in pure Python (pathspec), and a walk that keeps them.

Used by the pure-Python fallback, list_dir, the check of globbed rg results, and the
open buffers grep searches instead of the disk.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pathspec

from codeloop.tools.base import ToolError
from codeloop.tools.search.fs import DIR_FLAGS, open_beneath

log = logging.getLogger("codeloop.tools.search")

IGNORE_FILES = (".gitignore", ".ignore", ".rgignore")  # later files win, as in rg
ALWAYS_SKIP = {".git"}


class IgnoreMatcher:
    """.gitignore/.ignore/.rgignore semantics below ``root``, nested files included."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}
        self._dirs: dict[Path, bool] = {}  # directory -> ignored (itself or an ancestor)

    def _spec(self, directory: Path) -> pathspec.GitIgnoreSpec | None:
        if directory not in self._specs:
            lines: list[str] = []
            for name in IGNORE_FILES:
                try:
                    lines.extend((directory / name).read_text(encoding="utf-8", errors="replace").splitlines())
                except OSError:
                    continue
            spec = None
            if lines:
                try:
                    spec = pathspec.GitIgnoreSpec.from_lines(lines)
                except Exception:  # a malformed ignore file must not break search
                    log.warning("could not parse ignore files in %s", directory)
            self._specs[directory] = spec
        return self._specs[directory]

    def matches(self, path: Path, is_dir: bool) -> bool:
        """Whether ``path`` itself is ignored by the ignore files of its ancestors."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        parts = rel.parts
        if not parts:
            return False
        result: bool | None = None
        directory = self.root
        for depth in range(len(parts)):
            spec = self._spec(directory)
            if spec is not None:
                sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
                include = spec.check_file(sub).include
                if include is not None:
                    result = include
            directory = directory / parts[depth]
        return bool(result)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        """Ignored itself, or inside an ignored (or always skipped) directory."""
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return False
        if not parts:
            return False
        parent = self.root.joinpath(*parts[:-1])
        if parent != self.root:
            known = self._dirs.get(parent)
            if known is None:
                known = self.ignored(parent, True)
                self._dirs[parent] = known
            if known:
                return True
        return parts[-1] in ALWAYS_SKIP or self.matches(path, is_dir)


def glob_spec(glob: str | None) -> pathspec.GitIgnoreSpec | None:
    if not glob:
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines([glob])
    except Exception as e:
        raise ToolError(f"invalid glob {glob!r}: {e}") from None


def walk_files(root: Path, start: Path, matcher: IgnoreMatcher, glob: str | None = None) -> list[Path]:
    """Files below ``start`` (or ``start`` itself), not ignored, not symlinks, sorted by path.

    Every folder is opened from its parent's descriptor without following symlinks
    (``fs``), so a folder swapped for a symlink during the walk is skipped, not followed.
    """
    spec = glob_spec(glob)
    rel = start.relative_to(root).as_posix() if start != root else "."
    try:
        mode = os.lstat(start).st_mode
    except (OSError, ValueError):
        return []
    if stat.S_ISREG(mode):
        return [start]
    out: list[Path] = []

    def visit(fd: int, directory: Path) -> None:
        try:
            entries = sorted(os.scandir(fd), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name in ALWAYS_SKIP:
                continue
            try:
                if entry.is_symlink():
                    continue
                is_dir = entry.is_dir()
            except OSError:
                continue
            path = directory / entry.name
            if matcher.matches(path, is_dir):
                continue
            if is_dir:
                try:
                    sub = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    visit(sub, path)
                finally:
                    os.close(sub)
            elif entry.is_file(follow_symlinks=False):
                if spec is not None and not spec.match_file(path.relative_to(start).as_posix()):
                    continue
                out.append(path)

    try:
        top = open_beneath(root, rel)
    except (OSError, ValueError):
        return []
    try:
        visit(top, start)
    finally:
        os.close(top)
    out.sort(key=lambda p: p.relative_to(root).as_posix())
    return out
