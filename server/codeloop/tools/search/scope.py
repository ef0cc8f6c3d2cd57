"""The workspace boundary for searches.

A search must not see anything outside the workspace, exactly like the file tools.
Three layers:

1. Where it starts: the path the model gave is resolved by ``Workspace.resolve``
   (symlinks followed, the result must be inside), and only that *real* path is
   used from then on, relative to the root, never the model's text. ripgrep does
   not follow symlinks while it walks (no ``-L``), but it does follow a path
   argument that is a symlink; the real path has none.
2. The pure-Python walks (list_dir, the fallback) open every folder and file
   relative to its parent's descriptor with ``O_NOFOLLOW`` (``fs.open_beneath``,
   ``scandir`` on descriptors), so a folder swapped for a symlink at any moment is
   refused by the kernel instead of followed.
3. After a run, the folders of every result that will be shown are checked to
   still be real folders (``fs.RealDirs``, one ``lstat`` each); results under a
   folder that became a symlink while rg ran are dropped, with a note (rg opens
   what it walks by name, so a swap during the run could redirect it).

What remains: a process swapping a folder for a symlink *and back again* within
one rg run. That needs a second process running alongside (one the user let
run), which could read the files itself; docs/permissions.md says so.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from codeloop.tools.base import ToolContext, ToolError
from codeloop.tools.files import resolve_path
from codeloop.tools.search.fs import RealDirs


@dataclass(frozen=True)
class SearchStart:
    path: Path  # the real path, inside the workspace
    rel: str  # relative to the root, "." for the root: what rg is given
    is_dir: bool


def search_start(ctx: ToolContext, path: str) -> SearchStart:
    """Where a search starts: the real path of ``path`` inside the workspace."""
    start = resolve_path(ctx, path or ".")
    root = ctx.workspace.root
    # relative to the root as text: resolving it again could follow a symlink swapped in
    rel = start.relative_to(root).as_posix() if start != root else "."
    try:
        st = os.lstat(start)
    except FileNotFoundError:
        raise ToolError(f"path not found: {path}") from None
    except OSError as e:
        raise ToolError(f"cannot search {rel}: {e.strerror or e}") from None
    if stat.S_ISLNK(st.st_mode):  # it was not a symlink when it was resolved, just now
        raise ToolError(f"{rel} changed while it was opened (it is now a symbolic link); nothing was searched")
    return SearchStart(start, rel, stat.S_ISDIR(st.st_mode))


def check_argument(what: str, value: str) -> None:
    """A pattern or glob that cannot be passed to a program (ripgrep): a clean error."""
    if "\x00" in value:
        hint = " (write \\x00 in the regular expression to match one)" if what == "pattern" else ""
        raise ToolError(f"the {what} contains a NUL byte, which cannot be searched for{hint}")
    try:
        os.fsencode(value)
    except UnicodeError:
        raise ToolError(f"the {what} is not valid text (it holds a lone surrogate)") from None


def first_inside(root: Path, names: list[str], want: int, *, files: bool = False) -> tuple[list[str], int]:
    """The first ``want`` of ``names`` (in their order) whose folders are still real
    folders (with ``files``: that are not symlinks themselves either), followed by the
    rest unchecked (only counted, never shown); and how many were dropped.

    Only what is shown is checked: one ``lstat`` per folder and (``files``) per name,
    whatever the number of results."""
    dirs = RealDirs(root)
    kept: list[str] = []
    dropped = 0
    for i, name in enumerate(names):
        if len(kept) >= want:
            return kept + names[i:], dropped
        if dirs.holds(name) and not (files and dirs.is_link(name)):
            kept.append(name)
        else:
            dropped += 1
    return kept, dropped


def verify(start: SearchStart, root: Path, names: list[str], want: int) -> tuple[list[str], int]:
    """After a ripgrep run: ``first_inside`` of the names; a searched file that became a
    symlink drops everything."""
    kept, dropped = first_inside(root, names, want)
    if kept and not start.is_dir and RealDirs(root).is_link(start.rel):
        dropped += len(kept)
        kept = []
    return kept, dropped


def dropped_note(n: int) -> str:
    return (
        f"[{n} result{'s' if n != 1 else ''} left out: a folder holding them became a symbolic link "
        "while it was searched, and a search does not follow links out of the workspace]"
    )
