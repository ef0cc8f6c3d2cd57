"""The glob tool: files by name, newest first, respecting .gitignore."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pathspec
from pydantic import Field

import codeloop.tools.search.rg as rg
from codeloop.policy.types import PermissionRequest
from codeloop.tools.base import Tool, ToolContext, ToolError, ToolInput, ToolResult, first_line, plural
from codeloop.tools.files import file_permission
from codeloop.tools.search.ignore import IgnoreMatcher, glob_spec, walk_files
from codeloop.tools.search.scope import check_argument, dropped_note, first_inside, search_start

GLOB_MAX = 200
# Above this many matches glob lists by path instead of statting every file.
MTIME_SORT_MAX = 1000


async def list_files(ctx: ToolContext, start: Path, rel: str, glob: str | None) -> list[str]:
    """Workspace-relative files below ``start`` (not ignored), optionally filtered by glob."""
    if rg.find_rg() is not None:
        # No -g here: rg's globs override the ignore files, which would then have to be
        # re-checked in Python (slow). List what .gitignore lets through, then match the
        # glob against paths relative to the search start, as the fallback does.
        spec = glob_spec(glob)
        args = rg._base_rg_args() + ["--files"] + rg._globs(None) + rg._name_prefilter(glob)
        args += ["--", _narrowed(start, rel, glob)]
        code, out, err, _ = await rg._run_rg(args, ctx.workspace.root)
        if code == 2 and not out.strip() and err.strip():
            raise ToolError(f"listing files failed: {rg._rg_error(err)}")
        names = [rg._rel_from_rg(x) for x in out.splitlines() if x]
        if spec is None:
            return names
        match = _file_matcher(spec)
        prefix = "" if rel in (".", "") else rel.rstrip("/") + "/"
        if start.is_file():
            return [n for n in names if match(Path(n).name)]
        return [n for n in names if match(n[len(prefix):] if n.startswith(prefix) else n)]
    paths = await asyncio.to_thread(walk_files, ctx.workspace.root, start, IgnoreMatcher(ctx.workspace.root), glob)
    return [p.relative_to(ctx.workspace.root).as_posix() for p in paths]


def _real_dir(path: Path) -> bool:
    """A folder, not a symlink to one (rg follows a path argument that is a symlink)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def _narrowed(start: Path, rel: str, glob: str | None) -> str:
    """Where to list for ``glob``: below its literal leading folders when it is anchored
    (has a "/" before its end, as in gitignore), e.g. src/pkg for "src/pkg/**/*.py".
    Only through real folders: rg would follow a symlink given as its path (and list
    what it points to, outside the workspace), while it never follows one it walks into."""
    if not glob or not _real_dir(start):
        return rel
    body = glob[1:] if glob.startswith("/") else glob
    if "/" not in body.rstrip("/"):
        return rel  # unanchored: matches at any depth
    literal: list[str] = []
    for part in body.split("/")[:-1]:
        if not part or any(ch in part for ch in "*?[]{}!\\") or part in (".", ".."):
            break
        literal.append(part)
    if not literal:
        return rel
    narrowed = start
    for part in literal:
        narrowed = narrowed / part
        if not _real_dir(narrowed):
            return rel
    return "/".join(([] if rel in (".", "") else [rel.rstrip("/")]) + literal)


def _file_matcher(spec: pathspec.GitIgnoreSpec) -> Callable[[str], bool]:
    """A fast test of a file path against a one-line glob: what ``spec.match_file``
    does for one including pattern (its regex's ``match``), without ~1 µs of
    bookkeeping per name."""
    patterns = [p for p in spec.patterns if getattr(p, "regex", None) is not None]
    regex = patterns[0].regex if len(patterns) == 1 else None
    if len(spec.patterns) == 1 and regex is not None and patterns[0].include:
        match = regex.match
        return lambda name: match(name) is not None
    return spec.match_file


def _by_mtime(root: Path, names: list[str]) -> tuple[list[str], bool]:
    """Newest first, or (for many names: a stat each costs ~2 µs) by path. The flag
    says whether they were sorted by modification time."""
    if len(names) > MTIME_SORT_MAX:
        return sorted(names), False
    base = str(root)
    lstat, join = os.lstat, os.path.join  # the names are files, not symlinks: never follow one

    def key(name: str) -> tuple[float, str]:
        try:
            return (-lstat(join(base, name)).st_mtime, name)
        except OSError:
            return (0.0, name)

    return sorted(names, key=key), True


def _ordered(root: Path, names: list[str]) -> tuple[list[str], bool, list[str], int]:
    """(the names in order, whether newest first, the first GLOB_MAX that are still
    inside -- their folders real, themselves not symlinks --, how many of those were not)."""
    names, newest_first = _by_mtime(root, names)
    shown, dropped = first_inside(root, names, GLOB_MAX, files=True)
    return names, newest_first, shown[:GLOB_MAX], dropped


class Glob(Tool["Glob.Input"]):
    name = "glob"
    claude_names = ("Glob",)
    claude_fields = {"path": ("path", "path")}
    description = (
        "Find files by name with a glob (\"**/*.py\", \"src/**/test_*.ts\"), respecting .gitignore; "
        "newest first."
    )
    read_only = True
    kind = "Read"
    activity = "search"

    class Input(ToolInput):
        pattern: str = Field(description='The glob; without "/" it matches names at any depth.')
        path: str = Field(".", description="Folder to search in.")

    def summary(self, args: Input) -> str:
        return args.pattern if args.path in (".", "") else f"{args.pattern} in {args.path}"

    def outcome(self, args: Input, result: ToolResult) -> str:
        if not result.ok:
            return first_line(result.text)
        names = [ln for ln in result.text.splitlines() if ln and not ln.startswith(("[", "("))]
        return plural(len(names), "file") if names else "no files"

    def permission(self, args: Input, ctx: ToolContext) -> PermissionRequest | None:
        return file_permission("Read", args.path, ctx)

    async def run(self, args: Input, ctx: ToolContext) -> str:
        if not args.pattern.strip():
            raise ToolError("pattern is empty")
        check_argument("glob pattern", args.pattern)
        start = search_start(ctx, args.path)
        rel = start.rel
        if not start.is_dir:
            raise ToolError(f"{rel} is not a directory")
        names = await list_files(ctx, start.path, rel, args.pattern)
        if not names:
            return f"No files match {args.pattern!r}" + (f" in {rel}." if rel != "." else ".")
        names, newest_first, out, dropped = await asyncio.to_thread(_ordered, ctx.workspace.root, names)
        if len(names) > GLOB_MAX:
            order = "" if newest_first else "; listed by path, as there are too many to sort by modification time"
            out.append(
                f"[{len(names) - GLOB_MAX} more files cut ({len(names)} match{order}). "
                "Use a more specific pattern or path.]"
            )
        if dropped:
            out.append(dropped_note(dropped))
        return "\n".join(out)
